"""One error shape for the whole API: {"detail": message, "errors": {field: [messages]}}."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    domain = _domain_error_response(exc)
    if domain is not None:
        return domain
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        errors = {k: v if isinstance(v, list) else [v] for k, v in response.data.items()}
        # An empty key is possible too: a query string like "?=x" names no field.
        fields = ", ".join(k for k in errors if k and k != "non_field_errors")
        first = next((str(v[0]) for v in errors.values() if v), "Invalid input.")
        detail = f"Invalid input: {fields}." if fields else first
        response.data = {"detail": detail, "errors": errors}
    elif isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": " ".join(map(str, response.data)), "errors": {}}
    return response


def _domain_error_response(exc: Exception) -> Response | None:
    """Services raise plain exceptions; this is the one place that maps them to HTTP."""
    from .access import AccessDenied, RoleRequired
    from .answers import InvalidInput
    from .services import JudgmentConflict
    from .sessions import SessionConflict

    if isinstance(exc, AccessDenied):
        return not_found(str(exc))  # someone else's object looks exactly like a missing one
    if isinstance(exc, RoleRequired):
        return Response({"detail": str(exc)}, status=status.HTTP_403_FORBIDDEN)
    if isinstance(exc, InvalidInput):
        return invalid(exc.field, str(exc))
    if isinstance(exc, JudgmentConflict | SessionConflict):
        return conflict(str(exc))
    return None


def conflict(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_409_CONFLICT)


def not_found(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_404_NOT_FOUND)


def invalid(field: str, message: str) -> Response:
    return Response(
        {"detail": f"Invalid input: {field}. {message}", "errors": {field: [message]}},
        status=status.HTTP_400_BAD_REQUEST,
    )
