from django.apps import AppConfig


class TrainingJobsConfig(AppConfig):
    name = "training_jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete

        from annotation.signals import round_closed

        from . import triggers
        from .models import TrainingTrigger

        def train_closed_round(sender, round_id: int, **kwargs) -> None:
            # The project's round-close triggers, else the round's own train_on_close.
            triggers.triggers_round_closed(round_id=round_id)

        # annotation announces closed rounds; training listens (training_jobs → annotation).
        round_closed.connect(train_closed_round, weak=False, dispatch_uid="train-closed-round")
        post_delete.connect(
            triggers.trigger_deleted, sender=TrainingTrigger, dispatch_uid="trigger-schedule"
        )
