from django.urls import path

from . import export_views, project_views, round_views, session_views, stream_views, views

urlpatterns = [
    path("auth/csrf/", views.CsrfView.as_view(), name="auth-csrf"),
    path("auth/login/", views.LoginView.as_view(), name="auth-login"),
    path("auth/logout/", views.LogoutView.as_view(), name="auth-logout"),
    path("auth/me/", views.MeView.as_view(), name="auth-me"),
    path("auth/invite/accept/", views.InviteAcceptView.as_view(), name="invite-accept"),
    path("assignments/next/", views.NextAssignmentView.as_view(), name="assignment-next"),
    path(
        "assignments/<int:assignment_id>/judgment/",
        views.JudgmentSubmitView.as_view(),
        name="judgment-submit",
    ),
    path(
        "assignments/<int:assignment_id>/submit-and-next/",
        views.SubmitAndNextView.as_view(),
        name="judgment-submit-and-next",
    ),
    path("assignments/<int:assignment_id>/skip/", views.SkipView.as_view(), name="assignment-skip"),
    path("projects/", project_views.ProjectListView.as_view(), name="project-list"),
    path("projects/<slug:slug>/", project_views.ProjectDetailView.as_view(), name="project-detail"),
    path(
        "projects/<slug:slug>/guidelines/",
        project_views.GuidelinesVersionsView.as_view(),
        name="guidelines-versions",
    ),
    path(
        "projects/<slug:slug>/prompts/import/",
        project_views.PromptImportView.as_view(),
        name="prompt-import",
    ),
    path(
        "projects/<slug:slug>/sessions/",
        session_views.SessionStartView.as_view(),
        name="session-start",
    ),
    path("sessions/<int:session_id>/", session_views.SessionDetailView.as_view(), name="session"),
    path(
        "sessions/<int:session_id>/turns/",
        session_views.SessionTurnView.as_view(),
        name="session-turn",
    ),
    path(
        "sessions/<int:session_id>/turns/<int:turn_id>/candidates/",
        session_views.SessionCandidatesView.as_view(),
        name="session-candidates",
    ),
    path(
        "sessions/<int:session_id>/end/", session_views.SessionEndView.as_view(), name="session-end"
    ),
    # A plain async view (server-sent events): settings.ASGI_NATIVE_PATHS must match it.
    path(
        "sessions/<int:session_id>/stream/",
        stream_views.session_stream,
        name="session-stream",
    ),
    path("projects/<slug:slug>/tasks/", project_views.TaskListView.as_view(), name="task-list"),
    path(
        "projects/<slug:slug>/tasks/<int:task_id>/gold/",
        project_views.GoldTaskView.as_view(),
        name="task-gold",
    ),
    path("projects/<slug:slug>/members/", project_views.MembersView.as_view(), name="members"),
    path("projects/<slug:slug>/rounds/", round_views.RoundListView.as_view(), name="round-list"),
    path(
        "projects/<slug:slug>/rounds/<int:round_id>/",
        round_views.RoundDetailView.as_view(),
        name="round-detail",
    ),
    path(
        "projects/<slug:slug>/rounds/<int:round_id>/start/",
        round_views.RoundStartView.as_view(),
        name="round-start",
    ),
    path(
        "projects/<slug:slug>/rounds/<int:round_id>/close/",
        round_views.RoundCloseView.as_view(),
        name="round-close",
    ),
    path(
        "projects/<slug:slug>/rounds/<int:round_id>/report/",
        round_views.RoundReportView.as_view(),
        name="round-report",
    ),
    path("projects/<slug:slug>/exports/", export_views.ExportListView.as_view(), name="exports"),
    path(
        "projects/<slug:slug>/exports/<int:export_id>/",
        export_views.ExportDetailView.as_view(),
        name="export-detail",
    ),
    path(
        "projects/<slug:slug>/exports/<int:export_id>/download/",
        export_views.ExportDownloadView.as_view(),
        name="export-download",
    ),
    path(
        "projects/<slug:slug>/quality/",
        project_views.ProjectQualityView.as_view(),
        name="project-quality",
    ),
]
