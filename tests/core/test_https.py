"""An https:// PUBLIC_URL gives secure cookies, HSTS and a trusted proxy header only when told."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Loads the settings from the environment given, serves requests with Django's test client
# (through the whole middleware chain) and prints what a browser would get.
PROBE = """
import json, sys
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.test import Client, override_settings

# Plain static names, as in tests/conftest.py: no collectstatic manifest here.
plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
override_settings(STORAGES={**settings.STORAGES, "staticfiles": plain}, STATIC_ROOT=None).enable()

def cookies(response):
    return {name: {"secure": bool(morsel["secure"]), "httponly": bool(morsel["httponly"])}
            for name, morsel in response.cookies.items()}

def headers(response):
    return {name: response.headers.get(name) for name in (
        "Strict-Transport-Security", "Content-Security-Policy", "Location")}

found = {"settings": {name: getattr(settings, name, None) for name in (
    "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_SSL_REDIRECT",
    "SECURE_PROXY_SSL_HEADER", "CSRF_TRUSTED_ORIGINS", "ACCOUNT_DEFAULT_HTTP_PROTOCOL")}}
client = Client(HTTP_HOST="copr.example")
call_command("migrate", verbosity=0)  # the login page reads the database
if "--login" in sys.argv:
    from apps.accounts.models import User
    User.objects.create_user("alice", password="a-long-password-1")
    page = client.get("/login/", secure=True)
    found["login_page"] = {"headers": headers(page), "cookies": cookies(page)}
    logged_in = client.post("/login/", {"username": "alice", "password": "a-long-password-1"},
                            secure=True)
    found["logged_in"] = {"status": logged_in.status_code, "cookies": cookies(logged_in)}
plain = client.get("/login/")
found["plain_http"] = headers(plain)
forwarded = client.get("/login/", HTTP_X_FORWARDED_PROTO="https")
found["forwarded_https"] = headers(forwarded)
print(json.dumps(found))
"""
HTTPS_VARIABLES = (
    "PUBLIC_URL", "ALLOWED_HOSTS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE",
    "SECURE_HSTS_SECONDS", "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD",
    "SECURE_SSL_REDIRECT", "TRUST_X_FORWARDED_PROTO", "CSRF_TRUSTED_ORIGINS", "DATABASE_URL",
    "BROKER_URL", "GITHUB_CLIENT_ID", "GITLAB_CLIENT_ID", "GITHUB_URL", "GITLAB_URL",
)  # fmt: skip


def served(tmp_path: Path, *args: str, **env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if k not in HTTPS_VARIABLES}
    clean.update(
        DJANGO_SETTINGS_MODULE="coprsite.settings",
        VAR_DIR=str(tmp_path),
        ALLOWED_HOSTS="copr.example",
        **env,
    )
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=ROOT, env=clean, capture_output=True,
        text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_an_https_public_url_gives_secure_cookies_and_hsts(tmp_path):
    found = served(tmp_path, "--login", PUBLIC_URL="https://copr.example")
    assert found["settings"]["CSRF_TRUSTED_ORIGINS"] == ["https://copr.example"]
    assert found["settings"]["ACCOUNT_DEFAULT_HTTP_PROTOCOL"] == "https"
    page = found["login_page"]
    assert page["headers"]["Strict-Transport-Security"] == "max-age=31536000"
    assert page["cookies"]["csrftoken"]["secure"] is True
    assert found["logged_in"]["status"] == 302
    assert found["logged_in"]["cookies"]["sessionid"] == {"secure": True, "httponly": True}
    # No proxy is trusted unless said: a client's own X-Forwarded-Proto gets it nothing.
    assert found["settings"]["SECURE_PROXY_SSL_HEADER"] is None
    assert found["forwarded_https"]["Strict-Transport-Security"] is None
    assert found["plain_http"]["Strict-Transport-Security"] is None


def test_behind_a_tls_proxy_that_is_trusted(tmp_path):
    found = served(
        tmp_path,
        PUBLIC_URL="https://copr.example",
        TRUST_X_FORWARDED_PROTO="true",
        SECURE_SSL_REDIRECT="true",
        SECURE_HSTS_SECONDS="600",
        SECURE_HSTS_INCLUDE_SUBDOMAINS="true",
        SECURE_HSTS_PRELOAD="true",
    )
    assert found["forwarded_https"]["Strict-Transport-Security"] == (
        "max-age=600; includeSubDomains; preload"
    )
    # What reached the proxy over plain HTTP is sent to HTTPS.
    assert found["plain_http"]["Location"] == "https://copr.example/login/"


def test_an_http_public_url_keeps_the_embedded_defaults(tmp_path):
    found = served(tmp_path, PUBLIC_URL="http://127.0.0.1:8000")
    assert found["settings"]["SESSION_COOKIE_SECURE"] is False
    assert found["settings"]["CSRF_COOKIE_SECURE"] is False
    assert found["settings"]["SECURE_HSTS_SECONDS"] == 0
    assert found["plain_http"]["Strict-Transport-Security"] is None


def test_every_page_has_the_policy_and_login_forms_may_reach_the_providers(tmp_path):
    found = served(
        tmp_path,
        PUBLIC_URL="https://copr.example",
        GITHUB_CLIENT_ID="an-app",
        GITLAB_CLIENT_ID="another-app",
        GITLAB_URL="https://gitlab.example.org/",
    )
    policy = dict(
        part.strip().split(" ", 1)
        for part in found["plain_http"]["Content-Security-Policy"].split(";")
    )
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'"
    assert policy["object-src"] == "'none'"
    assert policy["frame-ancestors"] == "'none'"
    assert policy["base-uri"] == "'none'"
    assert policy["form-action"] == "'self' https://github.com https://gitlab.example.org"


def test_env_example_lists_the_https_settings():
    text = "\n" + (ROOT / ".env.example").read_text()
    for name in (
        "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS",
        "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_SSL_REDIRECT",
        "TRUST_X_FORWARDED_PROTO",
    ):  # fmt: skip
        assert f"\n{name}=" in text, name
