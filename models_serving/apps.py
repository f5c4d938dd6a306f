from django.apps import AppConfig


class ModelsServingConfig(AppConfig):
    name = "models_serving"
    verbose_name = "Model serving"
