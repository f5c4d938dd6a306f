"""Signals other apps listen to, so annotation never imports them (training_jobs → annotation)."""

from django.dispatch import Signal

# Sent (after commit) when a round closes; kwargs: round_id. training_jobs trains on it.
round_closed = Signal()
