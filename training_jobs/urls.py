from django.urls import path

from . import views

urlpatterns = [
    path("training-jobs/", views.TrainingJobListCreateView.as_view(), name="training-job-list"),
    path(
        "training-jobs/<int:job_id>/",
        views.TrainingJobDetailView.as_view(),
        name="training-job-detail",
    ),
    path(
        "training-jobs/<int:job_id>/cancel/",
        views.TrainingJobCancelView.as_view(),
        name="training-job-cancel",
    ),
    path(
        "projects/<slug:slug>/training-triggers/",
        views.TrainingTriggerListView.as_view(),
        name="training-trigger-list",
    ),
    path(
        "training-triggers/<int:trigger_id>/",
        views.TrainingTriggerDetailView.as_view(),
        name="training-trigger-detail",
    ),
    path(
        "training-triggers/<int:trigger_id>/run-now/",
        views.TrainingTriggerRunView.as_view(),
        name="training-trigger-run-now",
    ),
]
