"""OpenAPI post-processing: document the error answers every endpoint can give.

The API has one error shape (annotation/api_errors.py); views document their successes,
and this adds the 400/403/404 (and 429 for the throttled login) they share, so generated
clients and the fuzz test know every status the server may send.
"""

ERROR = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in words."},
        "errors": {
            "type": "object",
            # A list of messages per field; nested fields nest (e.g. {"flags": {"0": [...]}}).
            "additionalProperties": {},
            "description": "Messages by the field they are about (400 only).",
        },
    },
    "required": ["detail"],
}
SHARED = {
    "400": "Bad input; `errors` names the fields",
    "403": "Not logged in, or the role is too low",
    "404": "No such object, or not one of yours (the two look the same)",
}
THROTTLED = ("/api/v1/auth/login/", "/api/v1/auth/invite/accept/")


def add_error_responses(result: dict, generator, request, public) -> dict:
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            responses = operation.setdefault("responses", {})
            statuses = dict(SHARED)
            if method in ("post", "put", "patch"):
                statuses["415"] = "The body is not in a media type this endpoint reads"
            if path in THROTTLED:
                statuses["429"] = "Too many attempts; wait and retry"
            for code, description in statuses.items():
                if code not in responses:
                    responses[code] = {"description": description, "content": ref}
    return result
