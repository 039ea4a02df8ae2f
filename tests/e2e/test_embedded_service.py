"""The embedded setup `make run` starts: runserver with the in-process worker builds for real.

A separate process with its own SQLite database and no broker, driven over HTTP only.
"""

import configparser
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.builders.srpm_factory import make_srpm

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def manage(env: dict, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
        capture_output=True, text=True, timeout=300,
    ).stdout  # fmt: skip


@pytest.fixture
def embedded_server(tmp_path):
    """`manage.py runserver` on embedded defaults: SQLite under a fresh VAR_DIR, no broker."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
    env.update(VAR_DIR=str(tmp_path / "var"), PUBLIC_URL=f"http://127.0.0.1:{port}")
    manage(env, "migrate", "--noinput")
    config = configparser.ConfigParser()
    config.read_string(manage(env, "create_user", "alice"))
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_serving(url, server)
        yield url, (config["copr-cli"]["login"], config["copr-cli"]["token"]), server
    finally:
        server.terminate()
        server.wait(timeout=30)


def wait_until_serving(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"runserver exited: {server.stdout.read()}")
        try:
            requests.get(f"{url}/api/v1/builds", timeout=2)
            return
        except requests.ConnectionError:
            time.sleep(0.3)
    pytest.fail("runserver did not answer within 60 s")


def test_runserver_alone_builds_an_uploaded_srpm(embedded_server, tmp_path):
    url, credentials, _ = embedded_server
    created = requests.post(
        f"{url}/api/v1/projects", json={"name": "demo", "chroots": ["fedora-43-x86_64"]},
        auth=credentials, timeout=30,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    srpm = make_srpm(tmp_path, name="embedded")
    with open(srpm, "rb") as handle:
        submitted = requests.post(
            f"{url}/api/v1/projects/alice/demo/builds",
            files={"srpm": (srpm.name, handle, "application/x-rpm")},
            auth=credentials, timeout=60,
        )  # fmt: skip
    assert submitted.status_code == 201, submitted.text
    build_url = f"{url}/api/v1/builds/{submitted.json()['id']}"
    deadline = time.monotonic() + 180
    while (state := requests.get(build_url, timeout=10).json()["state"]) not in (
        "succeeded", "failed", "canceled",
    ):  # fmt: skip
        assert time.monotonic() < deadline, f"build still {state} after 180 s"
        time.sleep(0.5)
    assert state == "succeeded"
    listing = requests.get(f"{url}/results/alice/demo/fedora-43-x86_64/repodata/", timeout=10)
    assert "repomd.xml" in listing.text
