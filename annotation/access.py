"""The one place that decides who may touch what. Every view goes through here."""

from typing import TYPE_CHECKING, cast

from django.contrib.auth.models import AnonymousUser, User
from django.db.models import QuerySet

from models_serving.models import ModelEndpoint, ModelVersion

from .models import ROLE_RANK, Assignment, Conversation, Membership, Project, Role

if TYPE_CHECKING:
    from rest_framework.request import Request


class AccessDenied(Exception):
    """Raised when the caller may not see or change an object; views answer 404/403."""


class RoleRequired(Exception):
    """The caller's role is too low for something that belongs to no project; views answer 403."""


def request_user(request: "Request") -> User:
    """The caller of a view behind IsAuthenticated (the default permission): never anonymous."""
    return cast(User, request.user)


def user_role(user: User | AnonymousUser) -> Role | None:
    """The highest role the user holds anywhere; superusers are admins."""
    if not user.is_authenticated:
        return None
    if user.is_superuser:
        return Role.ADMIN
    roles = Membership.objects.filter(user=user).values_list("role", flat=True)
    ranked = sorted((Role(r) for r in roles), key=ROLE_RANK.__getitem__, reverse=True)
    return ranked[0] if ranked else None


def projects_for(user: User, *, min_role: Role) -> QuerySet[Project]:
    if user.is_superuser:
        return Project.objects.all()
    allowed = [r for r, rank in ROLE_RANK.items() if rank >= ROLE_RANK[min_role]]
    return Project.objects.filter(memberships__user=user, memberships__role__in=allowed).distinct()


def access_project_by_slug(user: User, slug: str, *, min_role: Role) -> Project:
    project = projects_for(user, min_role=min_role).filter(slug=slug).first()
    if project is None:
        raise AccessDenied(f"no project {slug!r} you may access as {min_role.label.lower()}")
    return project


def access_require_project_role(user: User, project: Project, *, min_role: Role) -> None:
    """For a project the caller already sees: 403 unless their role there is high enough."""
    if not projects_for(user, min_role=min_role).filter(pk=project.pk).exists():
        raise RoleRequired(f"only the project's {min_role.label.lower()}s may do this")


def access_assignment_by_id(user: User, assignment_id: int) -> Assignment:
    # Another annotator's assignment is indistinguishable from a missing one (no IDOR oracle).
    assignment = (
        Assignment.objects.select_related("task__project")
        .filter(pk=assignment_id, annotator=user)
        .first()
    )
    if assignment is None:
        raise AccessDenied(f"no assignment {assignment_id}")
    return assignment


def access_conversation_by_id(
    user: User, conversation_id: int, *, as_owner: bool = True
) -> Conversation:
    """Owners drive their session; researchers of the project may feed it candidates."""
    found = Conversation.objects.select_related("project").filter(pk=conversation_id)
    if as_owner:
        found = found.filter(owner=user)
    else:
        found = found.filter(project__in=projects_for(user, min_role=Role.RESEARCHER))
    conversation = found.first()
    if conversation is None:
        raise AccessDenied(f"no conversation {conversation_id}")
    return conversation


def access_require_role(user: User | AnonymousUser, *, min_role: Role) -> None:
    """Resources shared by all projects (model endpoints) go by the highest role held anywhere."""
    role = user_role(user)
    if role is None or ROLE_RANK[role] < ROLE_RANK[min_role]:
        raise RoleRequired(f"only {min_role.label.lower()}s may do this")


def access_model_endpoint_by_id(user: User, endpoint_id: int, *, min_role: Role) -> ModelEndpoint:
    """Researchers read endpoints (never the API key: see the serializer); admins change them."""
    access_require_role(user, min_role=min_role)
    endpoint = ModelEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None:
        raise AccessDenied(f"no model endpoint {endpoint_id}")
    return endpoint


def access_model_version_by_id(user: User, version_id: int, *, min_role: Role) -> ModelVersion:
    """Researchers read versions to pick them for rounds; admins change them."""
    access_require_role(user, min_role=min_role)
    version = ModelVersion.objects.select_related("endpoint").filter(pk=version_id).first()
    if version is None:
        raise AccessDenied(f"no model version {version_id}")
    return version
