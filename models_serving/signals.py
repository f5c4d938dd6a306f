"""Signals other apps listen to (annotation → models_serving: this app never imports them)."""

from django.db import transaction
from django.dispatch import Signal

# Sent after commit when a pending version becomes ready to sample; kwargs: version_id.
# Rounds waiting for the version resume their generation on it.
version_ready = Signal()


def announce_version_ready(version_id: int) -> None:
    transaction.on_commit(lambda: version_ready.send(sender=None, version_id=version_id))
