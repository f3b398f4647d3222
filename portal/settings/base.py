"""Settings every RadAssist process shares, read from the environment (django-environ).

Each variable's default is the embedded one (SQLite and the Celery broker's folders in
``var/``, a private media folder, a local MLflow store, email on the console), so that
``local`` and ``test`` run on a bare machine; ``production`` insists on the real services
instead. Importing this module reads the environment (and ``.env``) and nothing else: the
folders the embedded services write to are created by ``PortalConfig.ready``.
"""

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parents[2]

env = environ.Env()
env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env.str("RADASSIST_VAR_DIR", default=str(BASE_DIR / "var")))

# local.py turns DEBUG on; SECRET_KEY is set by each module (production refuses to start without one).
DEBUG = False
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SITE_URL = env.str("RADASSIST_SITE_URL", default="http://127.0.0.1:8000")

# Apps ---------------------------------------------------------------------------------------------
DJANGO_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.contrib.admin",
]
THIRD_PARTY_APPS = [
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
]
LOCAL_APPS = [
    "portal",
    "accounts",
    "scans",
    "ml",
    "reports",
    "clinic",
]
INSTALLED_APPS = DJANGO_APPS + THIRD_PARTY_APPS + LOCAL_APPS

MIDDLEWARE = [
    # First: load balancer probes get their answer before the HTTPS redirect and the host check.
    "portal.health.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.RequireMultiFactorMiddleware",
]

ROOT_URLCONF = "portal.urls"
WSGI_APPLICATION = "portal.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.context_processors.portal",
                "accounts.permissions.abilities",
            ],
        },
    },
]

# Database -----------------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'radassist.sqlite3'}")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=0)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web process and the worker write to the same file: wait for the lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://radassist")}

# Authentication -----------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "home"
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"

ACCOUNT_ADAPTER = "accounts.adapters.InvitationOnlyAccountAdapter"
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = False
ACCOUNT_SESSION_REMEMBER = None
ACCOUNT_PREVENT_ENUMERATION = True
# allauth's defaults already limit failed logins per IP and per account; stated here so they are visible.
ACCOUNT_RATE_LIMITS = {
    "login_failed": "10/m/ip,5/5m/key",
    "reset_password": "20/m/ip,5/m/key",
    "reset_password_from_key": "20/m/ip",
}
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "RadAssist"
# When true, hospital admins and doctors must set up a TOTP authenticator before using the portal.
RADASSIST_REQUIRE_MFA_FOR_STAFF = env.bool("RADASSIST_REQUIRE_MFA_FOR_STAFF", default=False)
INVITATION_VALID_DAYS = env.int("RADASSIST_INVITATION_VALID_DAYS", default=7)

# Internationalisation -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("RADASSIST_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Static files and private storage -----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Served straight from the apps and static/ (no collectstatic); production serves collectstatic's output.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
MEDIA_ROOT = Path(env.str("RADASSIST_MEDIA_ROOT", default=str(VAR_DIR / "media")))
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
PRIVATE_URL_EXPIRY_SECONDS = env.int("RADASSIST_PRIVATE_URL_EXPIRY_SECONDS", default=300)

if AWS_STORAGE_BUCKET_NAME:
    # Private bucket: no ACLs, every read through a short-lived presigned URL, encrypted at rest.
    PRIVATE_STORAGE = {
        "BACKEND": "portal.storage.PrivateS3Storage",
        "OPTIONS": {
            "bucket_name": AWS_STORAGE_BUCKET_NAME,
            "endpoint_url": env.str("AWS_S3_ENDPOINT_URL", default=None),
            # Where browsers reach the store when it differs from the address inside the cluster (MinIO).
            "public_endpoint_url": env.str("AWS_S3_PUBLIC_ENDPOINT_URL", default=None),
            "region_name": env.str("AWS_S3_REGION_NAME", default=None),
            "access_key": env.str("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env.str("AWS_SECRET_ACCESS_KEY", default=None),
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": PRIVATE_URL_EXPIRY_SECONDS,
            "file_overwrite": False,
            "object_parameters": {"ServerSideEncryption": env.str("AWS_S3_SERVER_SIDE_ENCRYPTION", default="AES256")},
            "addressing_style": env.str("AWS_S3_ADDRESSING_STYLE", default="path"),
            "signature_version": "s3v4",
        },
    }
else:
    PRIVATE_STORAGE = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        # No base_url: private files are only ever served through views that check visibility.
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": None},
    }
STORAGES = {
    "default": PRIVATE_STORAGE,
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env.int("RADASSIST_MAX_FILES_PER_REQUEST", default=2000)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_TEMP_DIR = env.str("RADASSIST_UPLOAD_TEMP_DIR", default=None)

# Ingest (scans.ingest) -----------------------------------------------------------------------------
#: DICOM modalities the portal accepts; others are rejected with a reason. Which accepted series are
#: analysed, and by which models, is decided per series by the model catalogue (ml.catalogue).
INGEST_ALLOWED_MODALITIES = set(env.list("RADASSIST_INGEST_ALLOWED_MODALITIES", default=["CT", "MR"]))
#: Largest single upload (a DICOM file, an image, or a zip archive), and largest zip entry.
INGEST_MAX_FILE_BYTES = env.int("RADASSIST_INGEST_MAX_FILE_MB", default=2048) * 1024 * 1024
#: Zip bomb limits: entries per archive, total uncompressed size, and the ratio of an entry's
#: uncompressed to compressed size (entries under 1 MB uncompressed are exempt from the ratio).
INGEST_MAX_ZIP_ENTRIES = env.int("RADASSIST_INGEST_MAX_ZIP_ENTRIES", default=10000)
INGEST_MAX_ZIP_TOTAL_BYTES = env.int("RADASSIST_INGEST_MAX_ZIP_TOTAL_MB", default=8192) * 1024 * 1024
INGEST_MAX_ZIP_RATIO = env.int("RADASSIST_INGEST_MAX_ZIP_RATIO", default=200)
#: A series pushed through STOW-RS is complete when no instance arrived for this long.
SERIES_QUIET_SECONDS = env.int("RADASSIST_SERIES_QUIET_SECONDS", default=30)
#: An upload batch with no new file for this long is closed for its uploader (its series then complete).
UPLOAD_BATCH_IDLE_SECONDS = env.int("RADASSIST_UPLOAD_BATCH_IDLE_SECONDS", default=3600)

# --- DICOM listener (scans/dimse; added with issue 19, to move into portal/settings/base.py) ---------
#: The TCP port of `manage.py run_dicom_listener` (and of the listener `make run` starts).
DICOM_PORT = env.int("RADASSIST_DICOM_PORT", default=11112)
# --- end of the DICOM listener block ----------------------------------------------------------------

# Email --------------------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="RadAssist <no-reply@radassist.example>")

# REST API -----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "portal.tenancy.VisibleToFilterBackend",
        "django_filters.rest_framework.DjangoFilterBackend",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "portal.api.exception_handler",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RadAssist API",
    "DESCRIPTION": "Scans, analyses and reports of one hospital. Authenticate with `Authorization: Bearer <api key>`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our own static files: the portal must work in a hospital network without internet.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Celery -------------------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
BROKER_FOLDER = VAR_DIR / "broker"
CELERY_BROKER_TRANSPORT_OPTIONS = (
    {
        "data_folder_in": str(BROKER_FOLDER / "queue"),
        "data_folder_out": str(BROKER_FOLDER / "queue"),
        "processed_folder": str(BROKER_FOLDER / "processed"),
        "control_folder": str(BROKER_FOLDER / "control"),
        "store_processed": False,
    }
    if CELERY_BROKER_URL.startswith("filesystem")
    else {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3 * 3600),
        # How often a worker looks for jobs whose worker died (sweep period is about interval x throttle).
        "unacked_restore_interval": env.int("CELERY_UNACKED_RESTORE_INTERVAL", default=10),
        "unacked_restore_throttle": env.int("CELERY_UNACKED_RESTORE_THROTTLE", default=10),
    }
)
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_EAGER_PROPAGATES = True

# Machine learning ---------------------------------------------------------------------------------
MLFLOW_TRACKING_URI = env.str("MLFLOW_TRACKING_URI", default=f"sqlite:///{VAR_DIR / 'mlflow' / 'mlflow.db'}")
MLFLOW_ARTIFACT_ROOT = env.str("MLFLOW_ARTIFACT_ROOT", default=str(VAR_DIR / "mlflow" / "artifacts"))

# Analysis pipeline (ml.tasks.analyse_series). The time limits are sized for a 1,000-slice series on
# a CPU worker (about 10 minutes); they must stay below CELERY_VISIBILITY_TIMEOUT, or Redis would hand
# a running job to a second worker.
ANALYSIS_SOFT_TIME_LIMIT = env.int("RADASSIST_ANALYSIS_SOFT_TIME_LIMIT", default=30 * 60)
ANALYSIS_TIME_LIMIT = env.int("RADASSIST_ANALYSIS_TIME_LIMIT", default=35 * 60)
# Deliveries that may start without finishing (worker killed) before the analysis is marked failed.
ANALYSIS_MAX_ATTEMPTS = env.int("RADASSIST_ANALYSIS_MAX_ATTEMPTS", default=3)
# Retries for transient errors (database or storage unavailable), with exponential backoff.
ANALYSIS_MAX_RETRIES = env.int("RADASSIST_ANALYSIS_MAX_RETRIES", default=8)
ANALYSIS_RETRY_BACKOFF_SECONDS = env.float("RADASSIST_ANALYSIS_RETRY_BACKOFF_SECONDS", default=5.0)
ANALYSIS_RETRY_BACKOFF_MAX_SECONDS = env.float("RADASSIST_ANALYSIS_RETRY_BACKOFF_MAX_SECONDS", default=300.0)
# A running analysis whose heartbeat is older than this is taken over by another delivery.
ANALYSIS_HEARTBEAT_TIMEOUT_SECONDS = env.int("RADASSIST_ANALYSIS_HEARTBEAT_TIMEOUT_SECONDS", default=180)

# Security -----------------------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# Logging: JSON lines; the formatter drops patient-identifying fields (see portal.logging).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_patient_data": {"()": "portal.logging.RedactPatientDataFilter"}},
    "formatters": {"json": {"()": "portal.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["redact_patient_data"]},
    },
    "root": {"handlers": ["console"], "level": env.str("RADASSIST_LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own console and mail handlers are replaced: every request log goes out as redacted JSON.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": [], "level": "INFO", "propagate": True},
        "django.db.backends": {"level": "WARNING"},
        "mlflow": {"level": "WARNING"},
        # WeasyPrint logs every rendering step at INFO; its warnings (a missing image, a bad rule) still show.
        "weasyprint": {"level": "WARNING"},
        "fontTools": {"level": "WARNING"},
        # DICOM listener: pynetdicom logs every DIMSE message at INFO; the listener logs one line per association.
        "pynetdicom": {"level": "WARNING"},
    },
}
