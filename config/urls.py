from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from .spa import spa_index


def healthz(request):
    return JsonResponse({"status": "ok"})


handler400 = "config.errors.bad_request"
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/v1/", include("annotation.urls")),
    path("api/v1/", include("training_jobs.urls")),
    path("api/v1/", include("annotation.endpoint_urls")),  # models_serving's, gated by roles
    path("healthz", healthz),
    # Everything else is a client-side route of the SPA.
    re_path(r"^(?!api/|admin/|static/).*$", spa_index, name="spa"),
]
