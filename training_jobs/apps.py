from django.apps import AppConfig


class TrainingJobsConfig(AppConfig):
    name = "training_jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from annotation.signals import round_closed

        from . import services

        def train_closed_round(sender, round_id: int, **kwargs) -> None:
            services.training_round_start(round_id=round_id)

        # annotation announces closed rounds; training listens (training_jobs → annotation).
        round_closed.connect(train_closed_round, weak=False, dispatch_uid="train-closed-round")
