import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from annotation.models import Membership, Role
from factories import ProjectFactory, member

pytestmark = pytest.mark.django_db


def test_admin_invites_a_new_annotator_who_sets_a_password_once():
    project = ProjectFactory(slug="team")
    admin = APIClient()
    admin.force_authenticate(member(project, Role.ADMIN))
    response = admin.post(
        "/api/v1/projects/team/members/", {"username": "newbie", "role": "annotator"}, format="json"
    )
    assert response.status_code == 201
    invite = response.json()["invite_path"]
    _, _, uid, token = invite.split("/")
    user = get_user_model().objects.get(username="newbie")
    assert not user.has_usable_password()

    anonymous = APIClient()
    weak = anonymous.post(
        "/api/v1/auth/invite/accept/", {"uid": uid, "token": token, "password": "x"}, format="json"
    )
    assert weak.status_code == 400 and "password" in weak.json()["errors"]
    body = {"uid": uid, "token": token, "password": "correct horse battery"}
    assert anonymous.post("/api/v1/auth/invite/accept/", body, format="json").status_code == 204
    user.refresh_from_db()
    assert user.check_password("correct horse battery")
    # The link dies with the password change.
    again = anonymous.post("/api/v1/auth/invite/accept/", body, format="json")
    assert again.status_code == 400 and "token" in again.json()["errors"]


def test_existing_user_is_re_roled_without_an_invite():
    project = ProjectFactory(slug="team2")
    admin = APIClient()
    admin.force_authenticate(member(project, Role.ADMIN))
    existing = member(project, Role.ANNOTATOR, username="veteran")
    response = admin.post(
        "/api/v1/projects/team2/members/",
        {"username": "veteran", "role": "researcher"},
        format="json",
    )
    assert response.json()["invite_path"] == ""
    assert Membership.objects.get(project=project, user=existing).role == "researcher"


def test_bad_role_is_a_400():
    project = ProjectFactory(slug="team3")
    admin = APIClient()
    admin.force_authenticate(member(project, Role.ADMIN))
    response = admin.post(
        "/api/v1/projects/team3/members/", {"username": "x", "role": "overlord"}, format="json"
    )
    assert response.status_code == 400 and "role" in response.json()["errors"]
