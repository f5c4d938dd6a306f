from django.urls import path

from . import views

urlpatterns = [
    path("auth/csrf/", views.CsrfView.as_view(), name="auth-csrf"),
    path("auth/login/", views.LoginView.as_view(), name="auth-login"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me/", views.MeView.as_view(), name="auth-me"),
    path("assignments/next/", views.NextAssignmentView.as_view(), name="assignment-next"),
    path(
        "assignments/<int:assignment_id>/judgment/",
        views.JudgmentSubmitView.as_view(),
        name="judgment-submit",
    ),
]
