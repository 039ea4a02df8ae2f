"""Settings come from the environment, with embedded defaults."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import django, json
django.setup()
from django.conf import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "db": db["ENGINE"], "name": str(db["NAME"]), "broker": s.DRAMATIQ_BROKER["BROKER"],
    "results": str(s.RESULTS_ROOT), "keys": str(s.KEYS_ROOT), "debug": s.DEBUG,
    "public": s.PUBLIC_URL, "hosts": s.ALLOWED_HOSTS, "key": s.SECRET_KEY,
    "results_url": s.RESULTS_URL, "web_internal": s.WEB_INTERNAL_URL,
    "connect": s.CONTENT_SECURITY_POLICY["DIRECTIVES"]["connect-src"],
}))
"""
VARIABLES = (
    "DATABASE_URL",
    "BROKER_URL",
    "RESULTS_ROOT",
    "KEYS_ROOT",
    "PUBLIC_URL",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "DEBUG",
    "RESULTS_URL",
    "WEB_INTERNAL_URL",
    "REPOSITORY_STORE",
    "PULP_URL",
    "PULP_API_ROOT",
    "PULP_USERNAME",
    "PULP_PASSWORD",
    "PULP_CONTENT_URL",
    "PULP_TASK_TIMEOUT",
)


def settings_with(tmp_path: Path, **env: str) -> dict:
    """Load the settings module in a fresh interpreter with exactly these variables set."""
    import json

    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    clean.update({"DJANGO_SETTINGS_MODULE": "coprsite.settings", "VAR_DIR": str(tmp_path)}, **env)
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env=clean,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def test_embedded_defaults(tmp_path):
    loaded = settings_with(tmp_path)
    assert loaded["db"] == "django.db.backends.sqlite3"
    assert loaded["name"] == str(tmp_path / "coprsite.sqlite3")
    assert loaded["broker"] == "dramatiq.brokers.stub.StubBroker"
    assert loaded["results"] == str(tmp_path / "results")
    assert loaded["keys"] == str(tmp_path / "keys")
    assert loaded["debug"] is False
    assert loaded["public"] == "http://127.0.0.1:8000"


def test_secret_key_is_generated_once_into_var(tmp_path):
    first = settings_with(tmp_path)["key"]
    assert (tmp_path / "secret_key").read_text() == first
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert settings_with(tmp_path)["key"] == first


def test_environment_overrides(tmp_path):
    loaded = settings_with(
        tmp_path,
        DATABASE_URL="postgres://u@db.example:5432/copr",
        BROKER_URL="redis://127.0.0.1:6379/3",
        RESULTS_ROOT="/srv/results",
        PUBLIC_URL="https://copr.example/",
        ALLOWED_HOSTS="copr.example",
        DEBUG="true",
        SECRET_KEY="from-env",
    )
    assert loaded["db"] == "django.db.backends.postgresql"
    assert loaded["broker"] == "dramatiq.brokers.redis.RedisBroker"
    assert loaded["results"] == "/srv/results"
    assert loaded["public"] == "https://copr.example"
    assert loaded["hosts"] == ["copr.example"]
    assert loaded["debug"] is True
    assert loaded["key"] == "from-env"
    assert not (tmp_path / "secret_key").exists()


def test_rabbitmq_and_bad_broker_urls(tmp_path):
    amqp = settings_with(tmp_path, BROKER_URL="amqp://guest:guest@127.0.0.1:5672/")
    assert amqp["broker"] == "dramatiq.brokers.rabbitmq.RabbitmqBroker"
    with pytest.raises(subprocess.CalledProcessError) as failure:
        settings_with(tmp_path, BROKER_URL="kafka://nope")
    assert (
        "BROKER_URL must start with redis://, rediss://, amqp:// or amqps://"
        in failure.value.stderr
    )


def test_env_example_lists_every_variable():
    text = (ROOT / ".env.example").read_text()
    for name in VARIABLES:
        assert f"\n{name}=" in "\n" + text or f"\n# {name}=" in "\n" + text, name


def test_one_host_needs_no_role_urls(tmp_path):
    loaded = settings_with(tmp_path)
    assert loaded["results_url"] == ""  # the site's own /results/
    assert loaded["web_internal"] == ""  # the backend reads UPLOADS_ROOT itself
    assert loaded["connect"] == ["'self'", "http://127.0.0.1:8000"]


def test_results_on_another_host_may_be_fetched_by_the_live_log(tmp_path):
    loaded = settings_with(
        tmp_path,
        RESULTS_URL="https://backend.example.net/results/",
        WEB_INTERNAL_URL="http://web.internal:8000/",
    )
    assert loaded["results_url"] == "https://backend.example.net/results"
    assert loaded["web_internal"] == "http://web.internal:8000"
    assert "https://backend.example.net" in loaded["connect"]


def test_the_repository_store_is_filesystem_or_pulp(tmp_path):
    with pytest.raises(subprocess.CalledProcessError) as failure:
        settings_with(tmp_path, REPOSITORY_STORE="s3")
    assert "REPOSITORY_STORE must be filesystem or pulp, not 's3'" in failure.value.stderr
    settings_with(tmp_path, REPOSITORY_STORE="pulp")  # loads
