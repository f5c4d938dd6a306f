from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from models_serving.signals import version_ready

        from .rounds import rounds_resume_for_version

        def resume_rounds(sender, version_id: int, **kwargs) -> None:
            rounds_resume_for_version(version_id=version_id)

        version_ready.connect(resume_rounds, weak=False, dispatch_uid="annotation.resume_rounds")
