"""Invite-only accounts: admins add members; a new user sets a password through a one-time
link (Django's password-reset token, so it dies once the password is set)."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model, password_validation
from django.contrib.auth.models import User
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode

from .answers import InvalidInput
from .models import Membership, Project, Role


@dataclass(frozen=True)
class MemberAdded:
    membership: Membership
    invite_path: str  # empty when the user already had an account


def member_add(*, project: Project, username: str, role: Role) -> MemberAdded:
    User = get_user_model()
    with transaction.atomic():
        user, created = User.objects.get_or_create(username=username)
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        membership, _ = Membership.objects.update_or_create(
            project=project, user=user, defaults={"role": role}
        )
    return MemberAdded(membership=membership, invite_path=invite_path(user) if created else "")


def invite_path(user: User) -> str:
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    return f"/invite/{uid}/{default_token_generator.make_token(user)}"


def invite_accept(*, uid: str, token: str, password: str) -> User:
    User = get_user_model()
    try:
        user = User.objects.get(pk=int(force_str(urlsafe_base64_decode(uid))))
    except (ValueError, TypeError, OverflowError, User.DoesNotExist):
        raise InvalidInput("uid", "this invitation link is not valid") from None
    if not default_token_generator.check_token(user, token):
        raise InvalidInput("token", "this invitation link was used or has expired")
    try:
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise InvalidInput("password", " ".join(exc.messages)) from exc
    user.set_password(password)
    user.save(update_fields=["password"])
    return user
