"""`make run PORT=…` hands out links to the port it serves, and says so when PUBLIC_URL misses.

scripts/serve (what `make run` ends in) is started on a free port with its own VAR_DIR and no
broker, as in tests/e2e/test_first_hour.py: without PUBLIC_URL in the environment the hub
config (and every other absolute link) names that port; with a PUBLIC_URL that names another
port, the service still starts and warns about it on its console. gunicorn, the production
web server, warns the same way about its bind address.
"""

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from tests.e2e.processes import RedisServer, stop_process_group
from tests.e2e.test_first_hour import NOT_FROM_MAKE_RUN, ROOT, free_port

pytestmark = pytest.mark.e2e

WARNING = "Warning: PUBLIC_URL is"


def serve(tmp_path, port: int, **env_extra) -> tuple[str, str]:
    """Run scripts/serve on `port` until it answers; return the hub config and its console."""
    env = {k: v for k, v in os.environ.items() if k not in (*NOT_FROM_MAKE_RUN, "PUBLIC_URL")}
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    env.update(VAR_DIR=str(tmp_path / "var"), PY=sys.executable, **env_extra)
    log = tmp_path / f"serve-{port}.log"
    with open(log, "w") as output:
        server = subprocess.Popen(
            [str(ROOT / "scripts" / "serve"), "127.0.0.1", str(port)], cwd=ROOT, env=env,
            stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            if server.poll() is not None:
                pytest.fail(f"scripts/serve exited: {log.read_text()}")
            try:
                hub = requests.get(f"http://127.0.0.1:{port}/dnf/copr-hub.conf", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"scripts/serve did not answer: {log.read_text()}")
                time.sleep(0.3)
        assert hub.status_code == 200, hub.text
        return hub.text, log.read_text()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def test_links_follow_the_port_make_run_serves_and_a_mismatch_is_warned(tmp_path):
    port = free_port()
    hub, console = serve(tmp_path, port)
    assert f"hostname = 127.0.0.1\nprotocol = http\nport = {port}\n" in hub
    assert WARNING not in console

    other = free_port()
    hub, console = serve(tmp_path, other, PUBLIC_URL=f"http://127.0.0.1:{port}")
    assert f"port = {port}\n" in hub  # the operator's PUBLIC_URL is kept...
    assert f"{WARNING} http://127.0.0.1:{port}, but this serves on 127.0.0.1:{other}" in console


def test_gunicorn_warns_when_public_url_misses_its_bind_address(tmp_path):
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in (*NOT_FROM_MAKE_RUN, "PUBLIC_URL")}
    env.update(VAR_DIR=str(tmp_path / "var"), BROKER_URL=redis.url, RECONCILE_SECONDS="3600")
    log = tmp_path / "gunicorn.log"
    try:
        with open(log, "w") as output:
            server = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind",
                 f"127.0.0.1:{port}", "--workers", "1", "coprsite.wsgi"],
                cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            expected = f"PUBLIC_URL is http://127.0.0.1:8000, but this serves on 127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while expected not in log.read_text():
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"no warning from gunicorn: {log.read_text()}")
                time.sleep(0.3)
        finally:
            stop_process_group(server)
    finally:
        redis.stop()
