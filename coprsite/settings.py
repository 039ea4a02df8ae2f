"""Settings: every value comes from the environment, with a default for the embedded setup."""

import datetime
import hashlib
import os
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from coprsite.broker import broker_backend

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str = "") -> str:
    """A variable's value; set-but-empty counts as unset, as in .env.example."""
    return os.environ.get(name) or default


def env_bool(name: str, default: bool) -> bool:
    value = env(name)
    if not value:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


def read_or_create_secret_key(path: Path) -> str:
    """The embedded setup keeps a generated key in var/ so sessions survive restarts."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    # O_EXCL: two processes starting together must not write two different keys.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


def default_builder_tools_dir(var_dir: Path) -> Path:
    """Where scripts/builder-tools installs the tools when BUILDER_TOOLS_DIR is unset.

    As root, builds run as an unprivileged uid that must read the tools, and a checkout in
    /root or a `mktemp -d` is mode 0700: the tools go to a root-owned, world-readable
    place outside the checkout (scripts/builder-tools picks the same one).
    """
    if os.geteuid() == 0:
        return Path("/var/lib/coprsite/builder-tools")
    return var_dir / "builder-tools"


def default_worker_temp_dir(var_dir: Path) -> Path:
    """A directory of the system temp dir named after this instance's var dir: short (gpg's
    socket paths are limited to 108 bytes), and two instances on a host never share it."""
    digest = hashlib.sha256(str(var_dir.resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"coprsite-{digest}"


VAR_DIR = Path(env("VAR_DIR", str(BASE_DIR / "var")))
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env("SECRET_KEY") or read_or_create_secret_key(VAR_DIR / "secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")
PUBLIC_URL = env("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", PUBLIC_URL)
# Mail to project admins (permission requests). The default prints mails in the portal's
# log, so the embedded setup needs no mail server; set the SMTP backend and host to send.
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "coprsite@localhost")

DATABASE_URL = env("DATABASE_URL", f"sqlite:///{VAR_DIR / 'coprsite.sqlite3'}")
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Workers and the web process share one SQLite file; wait for locks instead of failing.
    # WAL lets readers go on while one thread writes, and a commit is an append to the log
    # instead of several fsyncs (a crash may lose the last commits, never corrupt the file).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory: end-to-end tests share the test database with worker threads.
    # One per test process, so parallel runs do not trample each other's file.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-{os.getpid()}.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Unset BROKER_URL means the embedded setup: Dramatiq's StubBroker with an in-process worker
# (`make run`); gunicorn and `manage.py rundramatiq` refuse to start without a broker.
BROKER_URL = env("BROKER_URL")
RESULTS_ROOT = Path(env("RESULTS_ROOT", str(VAR_DIR / "results")))
KEYS_ROOT = Path(env("KEYS_ROOT", str(VAR_DIR / "keys")))
UPLOADS_ROOT = Path(env("UPLOADS_ROOT", str(VAR_DIR / "uploads")))
# Roles on separate hosts (docs/operations.md): the URL by which the backend reaches the web
# role to fetch uploads (signed links that expire after UPLOAD_LINK_SECONDS); empty means
# one host, where the backend reads UPLOADS_ROOT itself. SECRET_KEY must then be the same on
# the web and backend hosts (the backend signs the links, the web checks them).
WEB_INTERNAL_URL = env("WEB_INTERNAL_URL").rstrip("/")
UPLOAD_LINK_SECONDS = int(env("UPLOAD_LINK_SECONDS", "600"))
# Where browsers and clients find results, logs and repositories (the backend's results
# server when it runs on another host); empty: PUBLIC_URL's own /results/ (apps.core.paths).
RESULTS_URL = env("RESULTS_URL").rstrip("/")
# Local builds' workspaces (one per task, removed when it ends, swept by reconcile after a
# crash). The build uid must be able to pass through every parent; when it cannot (a
# checkout in a mode-0700 directory), a private directory in the temp dir is used instead
# (apps/builds/workspaces.py).
WORKSPACES_ROOT = Path(env("WORKSPACES_ROOT", str(VAR_DIR / "workspaces")))
SIGN_DOMAIN = env("SIGN_DOMAIN", "coprsite.local")
API_TOKEN_DAYS = int(env("API_TOKEN_DAYS", "180"))
# Builds (Copr's limits): seconds, default and maximum per build.
DEFAULT_BUILD_TIMEOUT = int(env("DEFAULT_BUILD_TIMEOUT", "18000"))
MAX_BUILD_TIMEOUT = int(env("MAX_BUILD_TIMEOUT", "108000"))
# SSH access for debugging: the longest a user may keep a build's machine (Copr allows
# three days; a cloud machine costs money while it waits), and how many one user may hold
# at once, builds with SSH access not yet finished included (Copr's builds_max_userssh).
SSH_DEBUG_MAX_HOURS = int(env("SSH_DEBUG_MAX_HOURS", "24"))
SSH_DEBUG_MAX_MACHINES = int(env("SSH_DEBUG_MAX_MACHINES", "2"))
SOURCE_TASK_TIMEOUT = int(env("SOURCE_TASK_TIMEOUT", "3600"))
MAX_SRPM_BYTES = int(env("MAX_SRPM_BYTES", str(512 * 1024 * 1024)))
# Files that must not pile up: the bytes of one user's uploads still waiting for their
# source task (an upload past it is refused; 0: no budget), and the directory of the
# workers' short-lived files (signing homes, createrepo package lists), swept of those
# whose process died. Keep it on this host, never shared with another container.
UPLOADS_USER_BUDGET_BYTES = int(env("UPLOADS_USER_BUDGET_BYTES", str(4 * 1024 * 1024 * 1024)))
WORKER_TEMP_DIR = Path(env("WORKER_TEMP_DIR", str(default_worker_temp_dir(VAR_DIR))))
# Resource limits of every build and source task (0: none); a builder pool may override
# each. CPU time is summed over the job's processes; disk covers the workspace and /tmp.
BUILD_LIMIT_PROCESSES = int(env("BUILD_LIMIT_PROCESSES", "1024"))
BUILD_LIMIT_MEMORY_MIB = int(env("BUILD_LIMIT_MEMORY_MIB", "4096"))
BUILD_LIMIT_CPU_SECONDS = int(env("BUILD_LIMIT_CPU_SECONDS", "36000"))
BUILD_LIMIT_DISK_MIB = int(env("BUILD_LIMIT_DISK_MIB", "10240"))
# CPU per job in percent of one CPU (a cgroup quota). The default leaves one CPU of the host
# to the portal and the queue (half of it on a one-CPU host); builds also get a CPU weight
# a tenth of the service's, so under contention the service comes first regardless.
BUILD_LIMIT_CPU_PERCENT = int(
    env("BUILD_LIMIT_CPU_PERCENT", str(max(50, 100 * ((os.cpu_count() or 1) - 1))))
)
# Slots of the local builder pool (concurrent builds on the worker host). Default: CPUs.
LOCAL_BUILDER_SLOTS = int(env("LOCAL_BUILDER_SLOTS", str(os.cpu_count() or 1)))
# A running task whose worker has not reported for this long is treated as lost.
TASK_LEASE_SECONDS = int(env("TASK_LEASE_SECONDS", "120"))
# How often a running task reports its heartbeat and polls for a cancel that was not pushed
# to it (the push, through PostgreSQL or a Redis broker, is immediate). Keep it well within
# TASK_LEASE_SECONDS.
TASK_POLL_SECONDS = float(env("TASK_POLL_SECONDS", "3"))
MAX_TASK_ATTEMPTS = int(env("MAX_TASK_ATTEMPTS", "2"))
# An SSH builder whose link broke mid-job: how long its worker tries to reach it again (the
# job runs on there, detached) before the task counts a lost attempt.
BUILDER_RECONNECT_SECONDS = int(env("BUILDER_RECONNECT_SECONDS", "300"))
# Scheduling: a pending task that has waited this long is taken in queued order, whatever
# its priority, so a stream of uploads (source tasks) cannot hold back earlier RPM builds.
SCHEDULER_AGING_SECONDS = int(env("SCHEDULER_AGING_SECONDS", "120"))
# A createrepo run holds its repository by a lease of this many seconds, renewed while it
# runs; a dead worker's lease runs out and the reconcile tick hands the repository on.
# Keep it within TASK_LEASE_SECONDS: a repository recovers as fast as a lost task.
REPOSITORY_LEASE_SECONDS = int(env("REPOSITORY_LEASE_SECONDS", "60"))
# Where published repositories live (apps/repos/stores): `filesystem` (createrepo_c writes
# repodata/ into RESULTS_ROOT, served from /results/) or `pulp` (pulp_rpm repositories and
# distributions, served by Pulp's content app at PULP_CONTENT_URL). One per instance.
REPOSITORY_STORE = env("REPOSITORY_STORE", "filesystem")
if REPOSITORY_STORE not in ("filesystem", "pulp"):
    raise ImproperlyConfigured(
        f"REPOSITORY_STORE must be filesystem or pulp, not {REPOSITORY_STORE!r}"
    )
# Pulp's API (the backend role talks to it) and its content app (what .repo files name).
PULP_URL = env("PULP_URL", "http://127.0.0.1:24817").rstrip("/")
PULP_API_ROOT = env("PULP_API_ROOT", "/pulp/")
PULP_USERNAME = env("PULP_USERNAME", "admin")
PULP_PASSWORD = env("PULP_PASSWORD")
PULP_CONTENT_URL = env("PULP_CONTENT_URL", "http://127.0.0.1:24816/pulp/content").rstrip("/")
# Seconds to wait for one Pulp task (an upload, a new version, a publication) to end.
PULP_TASK_TIMEOUT = int(env("PULP_TASK_TIMEOUT", "600"))
# Builds of one package a Pulp repository keeps, newest first, in projects with auto_prune
# (Copr's Pulp storage keeps 5: `retain_package_versions`).
PULP_RETAIN_BUILDS = int(env("PULP_RETAIN_BUILDS", "5"))
# How often each worker process nudges the reconcile and scheduling actors.
RECONCILE_SECONDS = int(env("RECONCILE_SECONDS", "30"))
# Check at submit time that a source URL answers, so a typo is a 400, not a failed build.
SUBMIT_CHECK_URLS = env_bool("SUBMIT_CHECK_URLS", True)
# Let users name loopback, private and link-local hosts in source URLs and additional
# repositories (a closed network whose mirrors live there). Off: such URLs are refused,
# so nobody can make the service or a build reach PostgreSQL, Redis or the portal.
ALLOW_PRIVATE_URLS = env_bool("ALLOW_PRIVATE_URLS", False)
# Source tasks: where PyPI and RubyGems packages come from, and the builder-tools venv
# (pyp2spec, pyp2rpm, tito) that is bound read-only into the sandbox.
PYPI_INDEX_URL = env("PYPI_INDEX_URL", "https://pypi.org").rstrip("/")
RUBYGEMS_URL = env("RUBYGEMS_URL", "https://rubygems.org").rstrip("/")
BUILDER_TOOLS_DIR = Path(env("BUILDER_TOOLS_DIR", str(default_builder_tools_dir(VAR_DIR))))

# Web login. Username/password accounts serve the embedded setup; turn them off once an
# identity provider is configured (the console's password login follows this too).
LOCAL_PASSWORD_LOGIN = env_bool("LOCAL_PASSWORD_LOGIN", True)

# OpenID Connect through mozilla-django-oidc: offered only when the client id and all four
# endpoints are set (see the provider's /.well-known/openid-configuration). Redirect URI to
# register at the provider: <PUBLIC_URL>/oidc_auth/ (Copr's path).
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", "OpenID Connect")
OIDC_RP_CLIENT_ID = env("OIDC_RP_CLIENT_ID")
OIDC_RP_CLIENT_SECRET = env("OIDC_RP_CLIENT_SECRET")
OIDC_OP_AUTHORIZATION_ENDPOINT = env("OIDC_OP_AUTHORIZATION_ENDPOINT")
OIDC_OP_TOKEN_ENDPOINT = env("OIDC_OP_TOKEN_ENDPOINT")
OIDC_OP_USER_ENDPOINT = env("OIDC_OP_USER_ENDPOINT")
OIDC_OP_JWKS_ENDPOINT = env("OIDC_OP_JWKS_ENDPOINT")
OIDC_RP_SIGN_ALGO = env("OIDC_RP_SIGN_ALGO", "RS256")
OIDC_RP_SCOPES = env("OIDC_RP_SCOPES", "openid email profile")
OIDC_USERNAME_CLAIM = env("OIDC_USERNAME_CLAIM", "preferred_username")
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", "groups")
OIDC_USE_PKCE = env_bool("OIDC_USE_PKCE", True)
# Seconds to wait for the provider's token, userinfo and JWKS endpoints (library default: forever).
OIDC_TIMEOUT = int(env("OIDC_TIMEOUT", "15"))
LOGIN_REDIRECT_URL_FAILURE = "login"

# Failed logins (the login page, the console, API Basic credentials) are throttled with
# django-axes: LOGIN_FAILURE_LIMIT failures for one username or from one client address,
# each counted on its own, lock that name or address out for LOGIN_LOCKOUT_MINUTES. Only
# password and API-token attempts count; identity-provider logins are neither counted nor
# locked. A successful login clears the failures of its own name from its own address only,
# so logging into one's own account cannot wipe the count of guesses at another.
AXES_ENABLED = env_bool("LOGIN_THROTTLE", True)
AXES_FAILURE_LIMIT = int(env("LOGIN_FAILURE_LIMIT", "10"))
AXES_COOLOFF_TIME = datetime.timedelta(minutes=int(env("LOGIN_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_HANDLER = "apps.accounts.throttle.LoginFailuresHandler"
# Attempts while locked out are refused unrecorded: the lockout ends when it said it would.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_WHITELIST_CALLABLE = "apps.accounts.throttle.is_not_password_attempt"
AXES_LOCKOUT_CALLABLE = "apps.accounts.throttle.lockout_response"
AXES_CLIENT_IP_CALLABLE = "apps.accounts.throttle.client_address"
# Behind a proxy every request comes from the proxy's address. Name the header the proxy
# sets (X-Forwarded-For, X-Real-IP); its right-most address is used. Unset: REMOTE_ADDR.
# Never set it without a proxy that overwrites or appends to it: clients could pick any.
LOGIN_CLIENT_IP_HEADER = env("LOGIN_CLIENT_IP_HEADER")
AXES_DISABLE_ACCESS_LOG = True  # only failures are needed; successful logins are not kept
# Its warnings (a failure, a lockout) name the username and address, as sshd's do; the
# password is never logged.
AXES_SENSITIVE_PARAMETERS: list[str] = []

# GitHub and GitLab login through django-allauth, each offered when its client id is set.
GITHUB_CLIENT_ID = env("GITHUB_CLIENT_ID")
GITHUB_CLIENT_SECRET = env("GITHUB_CLIENT_SECRET")
GITHUB_URL = env("GITHUB_URL")  # GitHub Enterprise; unset means github.com
GITLAB_CLIENT_ID = env("GITLAB_CLIENT_ID")
GITLAB_CLIENT_SECRET = env("GITLAB_CLIENT_SECRET")
GITLAB_URL = env("GITLAB_URL", "https://gitlab.com").rstrip("/")


def social_login_providers() -> dict:
    providers: dict = {}
    if GITHUB_CLIENT_ID:
        github_app = {"client_id": GITHUB_CLIENT_ID, "secret": GITHUB_CLIENT_SECRET}
        providers["github"] = {"APPS": [github_app]}
        if GITHUB_URL:
            providers["github"]["GITHUB_URL"] = GITHUB_URL
    if GITLAB_CLIENT_ID:
        gitlab_app = {
            "client_id": GITLAB_CLIENT_ID,
            "secret": GITLAB_CLIENT_SECRET,
            "settings": {"gitlab_url": GITLAB_URL},
        }
        providers["gitlab"] = {"APPS": [gitlab_app]}
    return providers


SOCIALACCOUNT_PROVIDERS = social_login_providers()
# allauth handles only the GitHub/GitLab logins: no allauth signup, password or e-mail pages.
SOCIALACCOUNT_ONLY = True
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_LOGIN_METHODS = {"username"}
ACCOUNT_SIGNUP_FIELDS = ["username*", "email"]
ACCOUNT_USERNAME_VALIDATORS = "apps.accounts.adapters.USERNAME_VALIDATORS"
ACCOUNT_ADAPTER = "apps.accounts.adapters.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "apps.accounts.adapters.SocialAccountAdapter"
# Never log a GitHub/GitLab identity into an existing account because an e-mail matches.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = False
SOCIALACCOUNT_STORE_TOKENS = False

# HTTPS. An https:// PUBLIC_URL turns on secure-only cookies and HSTS (a year; subdomains
# and preload only when asked), and allauth's GitHub/GitLab callbacks in https. Django sends
# HSTS, and SECURE_SSL_REDIRECT judges a request, by whether it *sees* HTTPS: behind a proxy
# that terminates TLS, that takes TRUST_X_FORWARDED_PROTO (docs/operations.md).
HTTPS = PUBLIC_URL.startswith("https://")
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", HTTPS)
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "31536000" if HTTPS else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
# Only for a proxy that sets X-Forwarded-Proto itself (overwriting the client's): without
# one, any client could claim HTTPS with the header. Never on by default.
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if HTTPS else "http"


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def login_form_targets() -> list[str]:
    """Where a login form may end up: the GitHub/GitLab buttons post to allauth, which
    redirects to the provider, and Chrome holds a form's redirects to form-action too.
    (OpenID Connect starts with a link, which form-action does not govern.)"""
    targets = []
    if GITHUB_CLIENT_ID:
        targets.append(origin(GITHUB_URL or "https://github.com"))
    if GITLAB_CLIENT_ID:
        targets.append(origin(GITLAB_URL))
    return targets


# Content-Security-Policy on every page (django-csp): scripts, styles, fonts, images and
# fetches from this site only, no inline script or style (the Redoc page's styles carry a
# per-request nonce), no plugins, no framing, no <base>. PUBLIC_URL's and RESULTS_URL's
# origins too, for the live log's fetches of results (another name, another host).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF],
        "style-src": [SELF, NONCE],
        "img-src": [SELF, "data:"],
        "font-src": [SELF, "data:"],
        "connect-src": [SELF, *sorted({origin(PUBLIC_URL), origin(RESULTS_URL or PUBLIC_URL)})],
        "object-src": [NONE],
        "base-uri": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF, *login_form_targets()],
    }
}

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out name or address before any password is hashed.
    "axes.backends.AxesStandaloneBackend",
    "apps.accounts.backends.LocalPasswordBackend",
    "apps.accounts.oidc.OidcBackend",
]

INSTALLED_APPS = [
    # First, so its runserver (which starts the in-process worker) wins over staticfiles'.
    "apps.core",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc as our own static files: docs offline
    "django_filters",
    "django_dramatiq",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.gitlab",
    "axes",
    "apps.accounts",
    "apps.projects",
    "apps.packages",
    "apps.builds",
    "apps.repos",
    "apps.fleet",
    "apps.api",
    # Operations across apps (the reconcile tick): above builds, repos and packages.
    "apps.workflows",
    # The site's own pages (home, search, status, RSS): on top, beside the APIs.
    "apps.site",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Right after security: static files skip sessions, auth and the rest of the chain.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before sessions and auth look anything up: NUL, lone surrogates and deep JSON are a 400.
    "apps.site.middleware.InputGuard",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Before anything that reads the body (CSRF checks read forms): needs only the user.
    "apps.site.middleware.RequestBodyGuard",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    # Content-Security-Policy (CONTENT_SECURITY_POLICY above).
    "csp.middleware.CSPMiddleware",
    # Last: turns a login that hit the failure limit into the lockout answer (429).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "coprsite.urls"
WSGI_APPLICATION = "coprsite.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

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
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Static files: WhiteNoise serves them in every mode, DEBUG or not, from STATIC_ROOT, which
# `manage.py collectstatic` fills (`make run` runs it) with compressed copies and names that
# carry a hash of the content, so browsers may cache them for good. With DEBUG on, WhiteNoise
# serves them straight from the sources (static/ and the apps) instead. Tests that render
# pages in-process use plain names (tests/conftest.py), so they need no collectstatic.
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("STATIC_ROOT", str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
# Request bodies. apps.site.middleware.RequestBodyGuard refuses, from the headers alone, a
# body over MAX_SRPM_BYTES (plus multipart framing) on the upload routes and over
# DATA_UPLOAD_MAX_MEMORY_SIZE (plus framing) elsewhere, and anonymous uploads.
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024  # form fields and JSON bodies
DATA_UPLOAD_MAX_NUMBER_FILES = 10  # an upload carries a package and a `json` part
# Slow request bodies (apps/core/slowbody.py), for a server without nginx in front: after
# REQUEST_BODY_GRACE_SECONDS a body must arrive at REQUEST_BODY_MIN_RATE bytes/s on average
# (8 KiB/s: a 64 kbit/s link), and in full within REQUEST_BODY_TIMEOUT seconds (a 512 MB
# package at 300 KB/s); else 408. One user has at most UPLOADS_PER_USER package uploads in
# flight across every web process; more get 429 (apps/site/middleware.py).
REQUEST_BODY_MIN_RATE = int(env("REQUEST_BODY_MIN_RATE", "8192"))
REQUEST_BODY_GRACE_SECONDS = float(env("REQUEST_BODY_GRACE_SECONDS", "10"))
REQUEST_BODY_TIMEOUT = float(env("REQUEST_BODY_TIMEOUT", "1800"))
UPLOADS_PER_USER = int(env("UPLOADS_PER_USER", "3"))
# Files above this go to a temporary file instead of memory (Django's default): a 512 MB
# upload per request thread must never be held in RAM.
FILE_UPLOAD_MAX_MEMORY_SIZE = int(2.5 * 1024 * 1024)
# Where those temporary files go; unset: the system's temporary directory, which may be a
# RAM-backed /tmp (point it at a disk in production).
FILE_UPLOAD_TEMP_DIR = env("FILE_UPLOAD_TEMP_DIR") or None

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "coprsite API",
    "VERSION": "1",
    # The docs pages load Swagger UI and Redoc from our static files, never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}


def dramatiq_broker(url: str) -> dict:
    """The Dramatiq broker BROKER_URL names; a malformed URL stops every process, with why.

    Unset: the embedded StubBroker, which only a process running the in-process worker may
    use (gunicorn and rundramatiq refuse it: apps.core.embedded, gunicorn.conf.py).
    """
    backend = broker_backend(url)
    return {"BROKER": backend, "OPTIONS": {"url": url} if url else {}}


DRAMATIQ_BROKER = {
    **dramatiq_broker(BROKER_URL),
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
        "apps.core.ticker.ReconcileTicker",
    ],
}
DRAMATIQ_AUTODISCOVER_MODULES = ["actors"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    # django-axes says "no failures to clear" at every login: only its warnings.
    "loggers": {"axes": {"level": "WARNING"}},
}

# --- Copr's messages on the fedora-messaging bus (apps/builds/announce.py) ---------------------
# Off unless an AMQP broker is named: FEDORA_MESSAGING_URL (amqp://user:pass@host/vhost, read
# at a worker's first message), or FEDORA_MESSAGING_CONF, fedora-messaging's own TOML file
# (TLS client certificates and the rest; the URL, exchange and prefix below override it).
FEDORA_MESSAGING_URL = env("FEDORA_MESSAGING_URL")
FEDORA_MESSAGING_CONF = env("FEDORA_MESSAGING_CONF")
# Unset: fedora-messaging's publish_exchange (amq.topic unless its TOML file names another).
FEDORA_MESSAGING_EXCHANGE = env("FEDORA_MESSAGING_EXCHANGE")
# Fedora's bus prefixes Copr's topics (`org.fedoraproject.prod.copr.build.end`).
FEDORA_MESSAGING_TOPIC_PREFIX = env("FEDORA_MESSAGING_TOPIC_PREFIX")
