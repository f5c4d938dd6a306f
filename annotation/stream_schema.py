"""OpenAPI for the live-turn stream, which drf-spectacular cannot see (a plain async view).

The payload of each server-sent event is a component schema, so the frontend's generated
types cover the stream too (``components["schemas"]["LiveStreamDelta"]``, ...).
"""

PATH = "/api/v1/sessions/{session_id}/stream/"

DESCRIPTION = """\
Draws the session's `candidates_per_turn` candidates (2 to 4, set when the session starts)
for its open turn and streams them side by side as `text/event-stream`, blind: labels A, B,
... only. Two are judged on the project's pairwise scale; three or more are ranked (the
assignment's `interface` is `ranking`). Each event is `event: <name>` and `data: <JSON>`:

- `start` (LiveStreamStart): the pair exists and may be judged at once through
  `POST /api/v1/assignments/{assignment.id}/judgment/`; contents are still empty.
- `delta` (LiveStreamDelta): more text for one candidate.
- `done` (LiveStreamDone): that candidate is stored; `incomplete` when it was cut off.

then exactly one of

- `ready` (LiveStreamReady): every candidate ended; the stored pair, as `GET /assignments/next/`.
- `stopped` (LiveStreamStopped): judged (or redrawn elsewhere) before the end; the streams
  were cancelled and their texts stored as incomplete. After `judged`, the conversation
  continues from the chosen text exactly as streamed.
- `error` (LiveStreamError): the model server failed; the turn waits for candidates again.

`regenerate: true` withdraws the turn's unjudged pair and draws a new one for the same prefix.
Without it, a turn whose pair is already drawn answers 409. Leaving mid-stream cancels the
model requests; a pair left half-streamed is withdrawn and the next call draws a fresh one.
"""


def _object(properties: dict, description: str) -> dict:
    return {
        "type": "object",
        "description": description,
        "properties": properties,
        "required": sorted(properties),
    }


LABEL = {"$ref": "#/components/schemas/CandidateLabelEnum"}
ASSIGNMENT = {"$ref": "#/components/schemas/Assignment"}
SCHEMAS = {
    "LiveStreamRequest": {
        "type": "object",
        "properties": {
            "regenerate": {
                "type": "boolean",
                "default": False,
                "description": "Withdraw the turn's unjudged pair and draw a new one.",
            }
        },
    },
    "LiveStreamStart": _object(
        {"turn": {"type": "integer"}, "assignment": ASSIGNMENT}, "Event `start`."
    ),
    "LiveStreamDelta": _object({"label": LABEL, "text": {"type": "string"}}, "Event `delta`."),
    "LiveStreamDone": _object(
        {
            "label": LABEL,
            "finish_reason": {
                "type": "string",
                "description": "The model's (stop, length) or why it was cut off (judged, "
                "withdrawn, timeout).",
            },
            "incomplete": {"type": "boolean"},
        },
        "Event `done`.",
    ),
    "LiveStreamReady": _object({"assignment": ASSIGNMENT}, "Event `ready`."),
    "LiveStreamStopped": _object(
        {"reason": {"type": "string", "enum": ["judged", "withdrawn"]}}, "Event `stopped`."
    ),
    "LiveStreamError": _object({"message": {"type": "string"}}, "Event `error`."),
}


EVENTS = {
    "start": "LiveStreamStart",
    "delta": "LiveStreamDelta",
    "done": "LiveStreamDone",
    "ready": "LiveStreamReady",
    "stopped": "LiveStreamStopped",
    "error": "LiveStreamError",
}
# One server-sent event ({event, data}) as Schemathesis and OpenAPI 3.2's itemSchema read it.
EVENT = {
    "oneOf": [
        {
            "type": "object",
            "properties": {
                "event": {"type": "string", "enum": [name]},
                "data": {
                    "type": "string",
                    "contentMediaType": "application/json",
                    "contentSchema": {"$ref": f"#/components/schemas/{payload}"},
                },
            },
            "required": ["event", "data"],
        }
        for name, payload in EVENTS.items()
    ]
}


def add_session_stream(result: dict, generator, request, public) -> dict:
    result.setdefault("components", {}).setdefault("schemas", {}).update(SCHEMAS)
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    result.setdefault("paths", {})[PATH] = {
        "post": {
            "operationId": "v1_sessions_stream_create",
            "summary": "Stream the open turn's candidates (server-sent events)",
            "description": DESCRIPTION,
            "parameters": [
                {
                    "in": "path",
                    "name": "session_id",
                    "schema": {"type": "integer"},
                    "required": True,
                }
            ],
            "tags": ["v1"],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/LiveStreamRequest"}
                    }
                }
            },
            "security": [{"cookieAuth": []}, {"tokenAuth": []}],
            "responses": {
                "200": {
                    "description": "The event stream (see the description)",
                    "content": {"text/event-stream": {"schema": EVENT}},
                },
                "404": {"description": "No such session of yours", "content": json_error},
                "409": {
                    "description": "The turn is not waiting for candidates, or its model is off",
                    "content": json_error,
                },
            },
        }
    }
    return result
