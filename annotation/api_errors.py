"""One error shape for the whole API: {"detail": message, "errors": {field: [messages]}}."""

from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc, context):
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError) and isinstance(response.data, dict):
        errors = {k: v if isinstance(v, list) else [v] for k, v in response.data.items()}
        fields = ", ".join(k for k in errors if k != "non_field_errors")
        detail = f"Invalid input: {fields}." if fields else str(errors["non_field_errors"][0])
        response.data = {"detail": detail, "errors": errors}
    elif isinstance(exc, exceptions.ValidationError):
        response.data = {"detail": " ".join(map(str, response.data)), "errors": {}}
    return response


def conflict(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_409_CONFLICT)


def not_found(message: str) -> Response:
    return Response({"detail": message}, status=status.HTTP_404_NOT_FOUND)


def invalid(field: str, message: str) -> Response:
    return Response(
        {"detail": f"Invalid input: {field}. {message}", "errors": {field: [message]}},
        status=status.HTTP_400_BAD_REQUEST,
    )
