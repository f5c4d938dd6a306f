"""Settings read from the environment.

With nothing configured Arbiter runs on embedded defaults: SQLite and a filesystem
Celery broker under ``var/``, and the local model server on 127.0.0.1:8011. Setting
``DATABASE_URL`` / ``REDIS_URL`` switches the same code to Postgres and Redis.
"""

import os
import secrets
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")

VAR_DIR = Path(env.str("ARBITER_VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    # A key generated once per checkout keeps dev sessions valid across restarts
    # without shipping a well-known key.
    key_file = VAR_DIR / "secret_key"
    if not key_file.exists():
        # Several workers may start at once: write aside, then link into place atomically,
        # so nobody ever reads a half-written (empty) key.
        tmp = key_file.with_name(f"secret_key.{os.getpid()}")
        tmp.write_text(secrets.token_urlsafe(50))
        try:
            os.link(tmp, key_file)
        except FileExistsError:
            pass  # another process won; use its key
        finally:
            tmp.unlink(missing_ok=True)
    return key_file.read_text().strip()


SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="") or _secret_key()
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"]
)
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_beat",  # beat's schedule in the database: training triggers edit it
    "models_serving",
    "annotation",
    "training_jobs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
# config/asgi.py: these paths (regexes) run on Django's ASGI handler, every other one as
# WSGI on a pool of WEB_THREADS threads per web process.
ASGI_NATIVE_PATHS: list[str] = [r"/api/v1/sessions/\d+/stream/"]
WEB_THREADS = env.int("WEB_THREADS", default=8)
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'arbiter.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_POOL", default=True
):
    # Requests run on pooled threads (config/asgi.py); without a pool each request would
    # open a new Postgres connection (3-7 ms and a backend process each).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": env.int("DATABASE_POOL_MIN", default=2),
        "max_size": env.int("DATABASE_POOL_MAX", default=20),
        "timeout": 10,
    }
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several processes (web, two workers, beat) share the file: wait for locks
    # instead of failing, and let readers proceed while a writer commits.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns on every request when it is missing
FRONTEND_DIST = BASE_DIR / "frontend" / "dist"
STATICFILES_DIRS = [FRONTEND_DIST]
# The build may appear after the server starts (make run builds first; dev may not).
SILENCED_SYSTEM_CHECKS = ["staticfiles.W004"]
WHITENOISE_USE_FINDERS = True

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # the SPA reads it to send X-CSRFToken

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "annotation.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "annotation.api_errors.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"login": env.str("LOGIN_THROTTLE_RATE", default="10/min")},
}
SPECTACULAR_SETTINGS = {
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "annotation.stream_schema.add_session_stream",  # a plain async view spectacular misses
        "config.schema_hooks.add_error_responses",
    ],
    "TITLE": "Arbiter API",
    "DESCRIPTION": "Human preference data collection for LLM post-training.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI from the sidecar package: the docs page works without internet access.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "annotation.models.Role.choices",
        "CandidateLabelEnum": "annotation.answers.LABEL_CHOICES",
        "MessageRoleEnum": [("system", "system"), ("user", "user"), ("assistant", "assistant")],
        "DropOrKeepEnum": [("drop", "drop"), ("keep", "keep")],
        "SessionStatusEnum": [("open", "open"), ("ended", "ended")],
        "TrainingJobKindEnum": "training_jobs.models.TrainingJob.Kind",
        "TrainingJobStatusEnum": "training_jobs.models.TrainingJob.Status",
        "TrainingTriggerWhenEnum": "training_jobs.models.TrainingTrigger.When",
        "ModelEndpointKindEnum": "models_serving.models.ModelEndpoint.Kind",
        "ModelVersionKindEnum": "models_serving.models.ModelVersion.Kind",
    },
}

# Throttle counters must be shared by all web workers, so they live in Redis when there is one.
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
        if (REDIS_URL := env.str("REDIS_URL", default=""))
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- Celery -----------------------------------------------------------------
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
# JSON, e.g. {"visibility_timeout": 3600}; a redelivery after it is harmless (see training_jobs).
CELERY_BROKER_TRANSPORT_OPTIONS: dict = env.json("CELERY_BROKER_TRANSPORT_OPTIONS", default={})
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # rows in the database are the source of truth
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=6 * 3600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=6 * 3600 - 60)
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {
    "training_jobs.tasks.run_training_job": {"queue": "gpu"},
    # Starts a vLLM server process for a new full checkpoint: it must run on a GPU node.
    "models_serving.tasks.serve_checkpoint": {"queue": "gpu"},
}
CELERY_BEAT_SCHEDULE = {
    "expire-leases": {"task": "annotation.tasks.expire_stale_assignments", "schedule": 60.0},
    "top-up-task-buffers": {"task": "annotation.tasks.top_up_buffers", "schedule": 30.0},
    "close-due-rounds": {"task": "annotation.tasks.close_due_rounds", "schedule": 30.0},
    "reap-stale-training-jobs": {"task": "training_jobs.tasks.reap_stale_jobs", "schedule": 120.0},
    "check-model-endpoints": {"task": "models_serving.tasks.check_endpoints", "schedule": 60.0},
}
# Beat keeps its schedule in the database (django-celery-beat): the entries above are synced
# into it, and training triggers add their own cron entries there.
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Model serving ------------------------------------------------------------
MODELS_DIR = Path(env.str("ARBITER_MODELS_DIR", default=str(VAR_DIR / "models")))
TINY_POLICY_DIR = MODELS_DIR / "tiny-policy"
TINY_REWARD_DIR = MODELS_DIR / "tiny-reward"
LOCAL_MODEL_PORT = env.int("ARBITER_LOCAL_MODEL_PORT", default=8011)
# VLLM_BASE_URL is the production name; MODEL_BASE_URL is kept generic for any
# OpenAI-compatible server. The default is the embedded `transformers serve`.
MODEL_BASE_URL = env.str(
    "VLLM_BASE_URL",
    default=env.str("MODEL_BASE_URL", default=f"http://127.0.0.1:{LOCAL_MODEL_PORT}/v1"),
)
MODEL_SERVER_EMBEDDED = not (
    env.str("VLLM_BASE_URL", default="") or env.str("MODEL_BASE_URL", default="")
)
MODEL_API_KEY = env.str("VLLM_API_KEY", default=env.str("MODEL_API_KEY", default="EMPTY"))
MODEL_NAME = env.str("VLLM_MODEL", default=env.str("MODEL_NAME", default=str(TINY_POLICY_DIR)))
MODEL_SUPPORTS_N = env.bool("MODEL_SUPPORTS_N", default=bool(env.str("VLLM_BASE_URL", default="")))
# The vLLM server loads LoRA adapters at runtime (VLLM_ALLOW_RUNTIME_LORA_UPDATING, --enable-lora).
MODEL_SUPPORTS_LORA = env.bool("MODEL_SUPPORTS_LORA", default=False)
MODEL_CONNECT_TIMEOUT = env.float("MODEL_CONNECT_TIMEOUT", default=5.0)
MODEL_READ_TIMEOUT = env.float("MODEL_READ_TIMEOUT", default=120.0)
# Live sessions: a candidate still streaming after this long is cut off and kept as incomplete.
LIVE_STREAM_MAX_SECONDS = env.float("LIVE_STREAM_MAX_SECONDS", default=300.0)
# How often a live stream checks whether its pair was judged (or regenerated) meanwhile.
LIVE_STREAM_POLL_SECONDS = env.float("LIVE_STREAM_POLL_SECONDS", default=0.5)
# A live stream with nothing to send for this long sends an SSE comment line, so proxies
# (nginx's proxy_read_timeout is 60 s) and browsers keep the connection open.
LIVE_STREAM_KEEPALIVE_SECONDS = env.float("LIVE_STREAM_KEEPALIVE_SECONDS", default=15.0)
# New full checkpoints on a vLLM endpoint get their own `vllm serve` process, started by the
# gpu worker (models_serving.services.checkpoint_serve): the executable, the address the web
# and workers reach it at, the ports it may take, extra arguments (e.g. --gpu-memory-utilization
# so two servers fit during the switch), and how many such servers are kept running.
VLLM_EXECUTABLE = env.str("VLLM_EXECUTABLE", default="vllm")
VLLM_SERVE_BIND = env.str("VLLM_SERVE_BIND", default="127.0.0.1")
VLLM_SERVE_HOST = env.str("VLLM_SERVE_HOST", default="127.0.0.1")
VLLM_SERVE_PORTS = env.str("VLLM_SERVE_PORTS", default="8100-8199")
VLLM_SERVE_EXTRA_ARGS = env.str("VLLM_SERVE_EXTRA_ARGS", default="")
VLLM_SERVE_STARTUP_TIMEOUT = env.float("VLLM_SERVE_STARTUP_TIMEOUT", default=900.0)
VLLM_MAX_STARTED_SERVERS = env.int("VLLM_MAX_STARTED_SERVERS", default=2)

# --- Training -------------------------------------------------------------------
# Checkpoints and each job's work directory; in production a volume that every GPU worker and
# the model server mount at the same path. ARBITER_TRAINING_DIR is its older name.
CHECKPOINT_ROOT = Path(
    env.str("CHECKPOINT_ROOT", default=env.str("ARBITER_TRAINING_DIR", default=""))
    or VAR_DIR / "training"
)
TRAINING_OUTPUT_DIR = CHECKPOINT_ROOT
# How a GPU worker starts a recipe: "python" (one process), or "accelerate" / "torchrun" with
# TRAINING_NUM_PROCESSES processes, one per GPU. A job's config may set both for itself.
TRAINING_LAUNCHER = env.str("TRAINING_LAUNCHER", default="python")
TRAINING_NUM_PROCESSES = env.int("TRAINING_NUM_PROCESSES", default=1)
EXPORTS_DIR = Path(env.str("ARBITER_EXPORTS_DIR", default=str(VAR_DIR / "exports")))
TRAINING_HEARTBEAT_TIMEOUT = env.int("TRAINING_HEARTBEAT_TIMEOUT", default=600)
# How often a running job's worker reads the child's progress, beats and checks for cancel.
TRAINING_POLL_SECONDS = env.float("TRAINING_POLL_SECONDS", default=1.0)
# Starting checkpoints: DPO fine-tunes the policy, the reward model gets a scalar head.
TRAINING_BASE_POLICY = env.str("TRAINING_BASE_POLICY", default=str(TINY_POLICY_DIR))
TRAINING_BASE_REWARD_MODEL = env.str("TRAINING_BASE_REWARD_MODEL", default=str(TINY_REWARD_DIR))
# Reference log-probs kept across DPO jobs (keyed by data snapshot and reference checkpoint).
TRAINING_REF_LOGPS_DIR = Path(env.str("ARBITER_REF_LOGPS_DIR", default=str(VAR_DIR / "ref-logps")))
# New DPO checkpoints are registered as model versions on this endpoint. "local" is created
# for MODEL_BASE_URL when missing; any other name must already exist.
TRAINING_REGISTER_ENDPOINT = env.str("TRAINING_REGISTER_ENDPOINT", default="local")
# Recipe overrides for the jobs a closed round starts, by kind (the tiny CPU models need
# large learning rates to move in a few steps; set real values for real models). The reward
# model passes over its pairs once: more epochs memorise the tiny policy's random words and
# held-out accuracy falls (4 epochs: 0.71 against 0.81), as it does at 1e-3. 40% of the prompts
# are held out so that its accuracy is measured on enough pairs to mean something
# (tests/training_jobs/test_closed_loop.py).
TRAINING_ROUND_CONFIG: dict = {
    "reward_model": {"learning_rate": 2e-4, "num_train_epochs": 1, "eval_fraction": 0.4},
    "dpo": {"learning_rate": 5e-4, "max_steps": 20, "beta": 0.1},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
