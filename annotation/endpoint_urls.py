from django.urls import path

from . import endpoint_views

urlpatterns = [
    path(
        "model-endpoints/",
        endpoint_views.ModelEndpointListView.as_view(),
        name="model-endpoint-list",
    ),
    path(
        "model-endpoints/<int:endpoint_id>/",
        endpoint_views.ModelEndpointDetailView.as_view(),
        name="model-endpoint-detail",
    ),
    path(
        "model-endpoints/<int:endpoint_id>/health/",
        endpoint_views.ModelEndpointHealthView.as_view(),
        name="model-endpoint-health",
    ),
    path(
        "model-versions/", endpoint_views.ModelVersionListView.as_view(), name="model-version-list"
    ),
    path(
        "model-versions/<int:version_id>/",
        endpoint_views.ModelVersionDetailView.as_view(),
        name="model-version-detail",
    ),
]
