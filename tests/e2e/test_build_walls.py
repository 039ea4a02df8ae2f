"""The build sandbox's walls through the whole service: network rule and resource limits.

Live server, real Dramatiq worker, real sandbox; the job spec comes from the portal's
settings, as in production (without the suite's development network switch).
"""

import socket
from pathlib import Path

import pytest
import requests

from apps.builds.models import State
from builders.network import HOST_NETWORK_ENV
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def submit(live_server, token, srpm: Path, **fields) -> int:
    with open(srpm, "rb") as handle:
        response = requests.post(
            f"{live_server.url}/api/v1/projects/packager/tools/builds",
            files={"srpm": (srpm.name, handle, "application/x-rpm")},
            data={"chroots": ["fedora-43-x86_64"], **fields},
            auth=(token.login, token.token),
            timeout=60,
        )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def test_build_with_network_reaches_no_service_of_the_host(
    live_server, worker, packager, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv(HOST_NETWORK_ENV, raising=False)
    _, token, _ = packager
    port = int(live_server.url.rsplit(":", 1)[1])
    # The portal always; PostgreSQL and Redis where this host runs them (the control
    # below shows the host itself reaches them).
    targets = {"PORTAL": port, "POSTGRES": 5432, "REDIS": 6379}
    targets = {name: port for name, port in targets.items() if listening(port)}
    script = "; ".join(
        f"echo \"{name}=$(bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null"
        ' && echo OPEN || echo BLOCKED)"'
        for name, port in targets.items()
    )
    srpm = make_srpm(tmp_path, name="prober", build_script=f"{script}; gcc -o prober hello.c")

    build = finished_build(submit(live_server, token, srpm, enable_net="true"))

    task = build.tasks.get(chroot__name="fedora-43-x86_64")
    log = _live_log(live_server, task).splitlines()
    assert build.state == State.SUCCEEDED
    assert "PORTAL" in targets
    for name in targets:
        assert f"{name}=BLOCKED" in log
    assert any(line.startswith("INFO: Network: outbound only") for line in log)


def _live_log(live_server, task) -> str:
    return requests.get(
        f"{live_server.url}/results/packager/tools/{task.result_dir}/builder-live.log", timeout=30
    ).text


def test_build_over_the_process_limit_fails_naming_it(
    live_server, worker, packager, tmp_path, settings
) -> None:
    settings.BUILD_LIMIT_PROCESSES = 64
    _, token, _ = packager
    bomb = (
        "python3 -c 'import os, time\n"
        "for _ in range(200):\n"
        "    if os.fork() == 0:\n"
        "        time.sleep(3)\n"
        "        os._exit(0)'"
    )
    srpm = make_srpm(tmp_path, name="forker", build_script=f"{bomb}\ngcc -o forker hello.c")

    build = finished_build(submit(live_server, token, srpm))

    task = build.tasks.get(chroot__name="fedora-43-x86_64")
    assert build.state == State.FAILED
    assert task.state_reason == "process limit 64 reached"
    assert "Limits: 64 processes" in _live_log(live_server, task)
