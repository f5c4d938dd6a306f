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
]
