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
    "csp",
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
    # Security hardening (issue 17): size limit before anything reads the body; headers on every response
    # (static files, answered by WhiteNoise above, may be cached and carry no policy of their own).
    "portal.middleware.RequestSizeLimitMiddleware",
    "portal.middleware.ResponseHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "accounts.middleware.IdleSessionTimeoutMiddleware",
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

# PostgreSQL for hospital-scale data (issue 16) ---------------------------------------------------
#: Longest one SQL statement of a web request may run (ms) before PostgreSQL cancels it; 0: no limit.
DATABASE_STATEMENT_TIMEOUT_MS = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=30_000)
#: The same for Celery workers (analyses, report drafts and series completion write more per statement).
DATABASE_WORKER_STATEMENT_TIMEOUT_MS = env.int("DATABASE_WORKER_STATEMENT_TIMEOUT_MS", default=300_000)
#: Connections go through PgBouncer in transaction mode (docs/production.md): it refuses connection-time
#: options and cannot keep server-side cursors across transactions, so both are left to the server's role.
DATABASE_BEHIND_PGBOUNCER = env.bool("DATABASE_BEHIND_PGBOUNCER", default=False)
if DATABASES["default"]["ENGINE"] in ("django.db.backends.postgresql", "django.db.backends.postgresql_psycopg2"):
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = DATABASE_BEHIND_PGBOUNCER
    # JIT compilation fires on the planner's estimates for hospital-sized lists and costs more than the short
    # queries it compiles. gunicorn's application (portal/wsgi.py) says "web", Celery workers
    # (docker/entrypoint-worker.sh) "worker"; management commands such as migrate run without a timeout.
    _statement_timeout_ms = {
        "web": DATABASE_STATEMENT_TIMEOUT_MS, "worker": DATABASE_WORKER_STATEMENT_TIMEOUT_MS,
    }.get(env.str("RADASSIST_PROCESS_KIND", default=""), 0)
    if not DATABASE_BEHIND_PGBOUNCER:
        DATABASES["default"].setdefault("OPTIONS", {})["options"] = (
            f"-c jit=off -c statement_timeout={_statement_timeout_ms}"
        )
# End of PostgreSQL for hospital-scale data --------------------------------------------------------
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
# Failed logins (issue 17): "key" is the account *and* the client address (accounts.adapters), with a
# back-off in steps: 5 failures wait out 5 minutes, 10 an hour, 20 a day, for that pair only. A doctor
# whose password someone else guesses still logs in from their own workstation. Per address, 30 a
# minute (a whole hospital behind one NAT address stays well below it).
ACCOUNT_RATE_LIMITS = {
    "login_failed": "30/m/ip,5/5m/key,10/h/key,20/d/key",
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
#: OHIF Viewer's built files (``make ohif``), served as static files under ``STATIC_URL/ohif/`` when installed.
OHIF_DIST_DIR = BASE_DIR / "static-vendor" / "ohif"
if (OHIF_DIST_DIR / "index.html").is_file():
    STATICFILES_DIRS.append(("ohif", OHIF_DIST_DIR))
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
# Issue 17: the local default writes each message to a file under var/email; the console backend would
# put patients' names and addresses into the server log.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="filemail://")
if EMAIL_CONFIG["EMAIL_BACKEND"].endswith("filebased.EmailBackend") and not EMAIL_CONFIG.get("EMAIL_FILE_PATH"):
    EMAIL_CONFIG["EMAIL_FILE_PATH"] = str(VAR_DIR / "email")
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
        # django-filter with related-row choices from visible_to and bounded numbers (issue 17).
        "portal.api.TenantFilterBackend",
    ],
    # limit capped at RADASSIST_API_MAX_PAGE_SIZE; an offset past the end is an empty page (issue 17);
    # counts estimated beyond 1,000 rows (issue 16).
    "DEFAULT_PAGINATION_CLASS": "portal.pagination.EstimatedCountPagination",
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
    # The schema lists every route and filter: for signed-in users and API keys only (issue 17).
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
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

# Security hardening (issue 17) --------------------------------------------------------------------
# Kept together so that the settings split (base/local/production/test) can move it as one block.
import ipaddress  # noqa: E402 - used only by this block

from csp.constants import NONE, SELF  # noqa: E402 - used only by this block

#: Scripts and styles only from our own static files: no inline script, no inline event handler.
#: Browsers fetch private files from the bucket's public address when it has one (presigned redirects).
_PRIVATE_FILE_ORIGIN = env.str("AWS_S3_PUBLIC_ENDPOINT_URL", default="") or env.str("AWS_S3_ENDPOINT_URL", default="")
_PRIVATE_FILE_ORIGINS = [_PRIVATE_FILE_ORIGIN] if _PRIVATE_FILE_ORIGIN else []
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF],
        "img-src": [SELF, "data:", *_PRIVATE_FILE_ORIGINS],
        "connect-src": [SELF],
        "font-src": [SELF],
        "object-src": [NONE],
        "base-uri": [NONE],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
#: No page needs the camera, the microphone, the location or any other powerful browser feature.
RADASSIST_PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), usb=()"
)
#: Paths whose answers never carry patient data and may be cached; every other answer is ``no-store``.
RADASSIST_CACHEABLE_PATH_PREFIXES = [STATIC_URL, "/health/", "/favicon.ico"]
#: Largest request body: the largest single file plus room for the other form fields; refused before reading.
RADASSIST_MAX_REQUEST_BYTES = (
    env.int("RADASSIST_MAX_REQUEST_MB", default=INGEST_MAX_FILE_BYTES // (1024 * 1024) + 16) * 1024 * 1024
)
#: Reverse proxies in front of the web server, in the order a request passes them (IPs or CIDRs). Only a
#: request whose peer is the last of them has its client address taken from X-Forwarded-For (audit log).
RADASSIST_TRUSTED_PROXIES = [
    proxy.strip() for proxy in env.list("RADASSIST_TRUSTED_PROXIES", default=[]) if proxy.strip()
]
for _proxy in RADASSIST_TRUSTED_PROXIES:
    ipaddress.ip_network(_proxy, strict=False)  # a typo stops the start instead of every audited request
#: REST API: pages of at most this many rows (portal.api.BoundedLimitOffsetPagination).
RADASSIST_API_MAX_PAGE_SIZE = env.int("RADASSIST_API_MAX_PAGE_SIZE", default=200)
#: Idle timeout of browser sessions: staff (doctors, hospital admins, platform staff) are logged out after
#: this long without a request; 0 keeps the session until it expires (SESSION_COOKIE_AGE), as for patients.
RADASSIST_STAFF_IDLE_TIMEOUT_SECONDS = env.int("RADASSIST_STAFF_IDLE_TIMEOUT_SECONDS", default=30 * 60)
RADASSIST_PATIENT_IDLE_TIMEOUT_SECONDS = env.int("RADASSIST_PATIENT_IDLE_TIMEOUT_SECONDS", default=0)
#: Requests a page makes on its own (progress polling) keep no session alive.
RADASSIST_IDLE_BACKGROUND_PATH_SUFFIXES = ["/progress.json"]
#: Email (portal.email): seconds to wait for the mail server per operation, and retries of a failed send.
EMAIL_TIMEOUT = env.int("RADASSIST_EMAIL_TIMEOUT_SECONDS", default=10)
EMAIL_MAX_RETRIES = env.int("RADASSIST_EMAIL_MAX_RETRIES", default=8)
