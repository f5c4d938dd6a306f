"""Errors raised before a view runs (e.g. an oversize body) still answer API clients in JSON."""

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.defaults import bad_request as django_bad_request
from django.views.defaults import page_not_found as django_page_not_found
from django.views.defaults import server_error as django_server_error


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if not request.path.startswith("/api/"):
        return django_bad_request(request, exception)
    if isinstance(exception, RequestDataTooBig):
        return JsonResponse({"detail": "Request body too large."}, status=400)
    return JsonResponse({"detail": "Bad request."}, status=400)


def server_error(request: HttpRequest) -> HttpResponse:
    if not request.path.startswith("/api/"):
        return django_server_error(request)
    return JsonResponse({"detail": "Internal error; it has been logged."}, status=500)


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    # No CSRF check here (Django's default 404 view reads request.POST for it, which turns
    # an unparseable body into a 500).
    if not request.path.startswith("/api/"):
        return django_page_not_found(request, exception)
    return JsonResponse({"detail": f"No API endpoint at {request.path}."}, status=404)
