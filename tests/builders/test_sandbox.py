"""Tests for builders/sandbox.py: what hostile build code can and cannot see or do."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from builders import sandbox
from builders.failures import BuildCanceled, BuildTimeout
from builders.livelog import LiveLog
from builders.protocol import JobSpec
from builders.runner import run_job
from builders.sandbox import Watchdog, Workspace, build_identity, run_sandboxed, run_streamed
from tests.builders.helpers import LocalServer, world_readable_dir
from tests.builders.srpm_factory import make_srpm

REPO_ROOT = Path(__file__).resolve().parents[2]


class FakePortal:
    """Portal-like secrets on the host, readable by the build uid outside the sandbox."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.secret_value = f"django-insecure-{uuid.uuid4().hex}"
        self.secret = root / "var" / "secret_key"
        self.database = root / "var" / "db.sqlite3"
        self.keys = root / "keys"
        self.other_results = root / "results" / "bob" / "private-project"
        for directory in (self.secret.parent, self.keys, self.other_results):
            directory.mkdir(parents=True)
        self.secret.write_text(self.secret_value)
        with sqlite3.connect(self.database) as connection:
            connection.execute("create table account (password text)")
        (self.keys / "alice-hello-project.gpg").write_text("-----BEGIN PGP PRIVATE KEY BLOCK-----")
        (self.other_results / "private-1.0-1.x86_64.rpm").write_bytes(b"private")
        # World-readable on purpose: only the sandbox may be what hides them.
        for path in [root, *root.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


@pytest.fixture
def portal() -> Iterator[FakePortal]:
    root = world_readable_dir("coprsite-test-portal-")
    yield FakePortal(root)
    shutil.rmtree(root)


def probe_script(portal: FakePortal, port: int) -> str:
    """Shell lines for %build that print what the build can see, one MARKER=value each."""
    return "\n".join(
        [
            f'echo "SECRET=$(cat {portal.secret} 2>/dev/null || echo MISSING)"',
            f'echo "KEYS=$(ls {portal.keys} 2>/dev/null || echo MISSING)"',
            f'echo "DB=$(head -c 15 {portal.database} 2>/dev/null || echo MISSING)"',
            f'echo "OTHERS=$(ls {portal.other_results} 2>/dev/null || echo MISSING)"',
            f'echo "PORTAL=$(ls {REPO_ROOT} 2>/dev/null || echo MISSING)"',
            'echo "SHADOW=$(head -c 4 /etc/shadow 2>/dev/null || echo MISSING)"',
            'echo "ROOTHOME=$(ls /root 2>/dev/null || echo MISSING)"',
            'echo "HOSTPROCS=$(grep -l pytest /proc/[0-9]*/cmdline 2>/dev/null || echo NONE)"',
            f'echo "NET=$(curl -s -m 3 http://127.0.0.1:{port}/ >/dev/null 2>&1'
            ' && echo OPEN || echo BLOCKED)"',
            f"echo \"TCP=$(bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port}' 2>/dev/null"
            ' && echo OPEN || echo BLOCKED)"',
            'echo "UID=$(id -u)"',
            'echo "USRWRITE=$(touch /usr/coprsite-probe 2>/dev/null'
            ' && echo WRITABLE || echo DENIED)"',
            'echo "ENV=$(env | grep -c COPRSITE_TEST_ || true)"',
            # Positive control: reading a file the build should see works the same way.
            'echo "CONTROL=$(head -c 8 hello.c 2>/dev/null || echo MISSING)"',
            "gcc -o %{name} hello.c",
        ]
    )


def markers(log: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-Z]+)=(.*)$", log, flags=re.MULTILINE))


def test_hostile_build_sees_nothing_of_the_host(
    tmp_path: Path,
    portal: FakePortal,
    http_server: LocalServer,
    rpm_job: Callable[..., JobSpec],
    result_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COPRSITE_TEST_DATABASE_URL", "postgres://portal:hunter2@db/coprsite")
    srpm = make_srpm(tmp_path, build_script=probe_script(portal, http_server.port))

    result = run_job(rpm_job(srpm))

    log = (result_dir / "builder-live.log").read_text()
    seen = markers(log)
    assert result.state == "succeeded", result.failure_reason
    assert seen["CONTROL"] == "#include"
    assert seen["SECRET"] == "MISSING"
    assert seen["KEYS"] == "MISSING"
    assert seen["DB"] == "MISSING"
    assert seen["OTHERS"] == "MISSING"
    assert seen["PORTAL"] == "MISSING"
    assert seen["SHADOW"] == "MISSING"
    assert seen["ROOTHOME"] == "MISSING"
    assert seen["HOSTPROCS"] == "NONE"
    assert seen["NET"] == "BLOCKED"
    assert seen["TCP"] == "BLOCKED"
    assert http_server.requests == []
    assert seen["USRWRITE"] == "DENIED"
    assert seen["ENV"] == "0"
    assert seen["UID"] != "0"
    if os.geteuid() == 0:
        assert int(seen["UID"]) == build_identity()[0]
    assert portal.secret_value not in log
    assert "SQLite format" not in log


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to the build uid needs root")
def test_the_same_files_are_readable_by_the_build_uid_outside_the_sandbox(
    portal: FakePortal,
) -> None:
    # The control for the test above: file modes allow the build uid to read the secret,
    # so MISSING there is the sandbox's doing.
    uid, gid = build_identity()
    outside = subprocess.run(
        [
            "setpriv",
            f"--reuid={uid}",
            f"--regid={gid}",
            "--clear-groups",
            "--",
            "cat",
            str(portal.secret),
        ],
        capture_output=True,
        text=True,
    )

    assert outside.stdout == portal.secret_value


@pytest.fixture
def workspace() -> Iterator[Workspace]:
    created = Workspace.create()
    yield created
    created.cleanup()


def run_in_sandbox(
    workspace: Workspace, command: list[str], *, network: bool, log_path: Path
) -> tuple[int, str]:
    with LiveLog(log_path) as log:
        outcome = run_sandboxed(
            command, workspace, network=network, log=log, watchdog=Watchdog(lambda: False, 60)
        )
    return outcome.exit_code, log_path.read_text()


def test_network_only_when_asked(
    workspace: Workspace, http_server: LocalServer, tmp_path: Path
) -> None:
    (http_server.directory / "ping").write_text("pong")
    fetch = ["curl", "-sS", "-m", "5", http_server.url("ping")]

    without = run_in_sandbox(workspace, fetch, network=False, log_path=tmp_path / "off.log")
    with_net = run_in_sandbox(workspace, fetch, network=True, log_path=tmp_path / "on.log")

    # The suite's development switch (tests/conftest.py) shares the host's network, so
    # loopback answers here; tests/builders/test_network.py tests the production network.
    assert without[0] != 0
    assert "pong" not in without[1]
    assert with_net[0] == 0
    assert with_net[1].splitlines()[-1] == "pong"
    assert http_server.requests == ["/ping"]


def test_environment_is_minimal_and_home_is_the_workspace(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", "do-not-leak")

    code, output = run_in_sandbox(
        workspace,
        ["sh", "-c", "env; pwd; whoami; hostname"],
        network=False,
        log_path=tmp_path / "env.log",
    )

    assert code == 0
    lines = output.splitlines()
    environment = dict(line.split("=", 1) for line in lines if "=" in line)
    assert set(environment) <= {"HOME", "PATH", "LANG", "USER", "PWD", "SHLVL", "_"}
    assert environment["HOME"] == "/build"
    assert lines[-3:] == ["/build", "builder", "coprsite-builder"]
    assert "do-not-leak" not in output


def test_files_written_in_the_sandbox_land_in_the_workspace(
    workspace: Workspace, tmp_path: Path
) -> None:
    code, _ = run_in_sandbox(
        workspace,
        ["sh", "-c", "echo made-inside > /build/out.txt; echo t > /tmp/gone"],
        network=False,
        log_path=tmp_path / "w.log",
    )

    assert code == 0
    assert (workspace.build_dir / "out.txt").read_text() == "made-inside\n"


def test_cancel_raises_and_kills(workspace: Workspace, tmp_path: Path) -> None:
    calls = iter([False, False, True])

    with LiveLog(tmp_path / "c.log") as log, pytest.raises(BuildCanceled):
        run_sandboxed(
            ["sleep", "600"],
            workspace,
            network=False,
            log=log,
            watchdog=Watchdog(lambda: next(calls, True), 60),
        )


def test_timeout_stops_as_copr_does_int_then_term(tmp_path: Path, monkeypatch) -> None:
    """A job that ignores INT gets TERM next, each announced with Copr's timeout line."""
    monkeypatch.setattr(sandbox, "TIMEOUT_SIGNAL_SECONDS", 1)
    ignores_int = ["sh", "-c", "trap '' INT; echo started; sleep 60 & wait"]
    with LiveLog(tmp_path / "t.log") as log, pytest.raises(BuildTimeout, match="timed out"):
        run_streamed(ignores_int, log=log, watchdog=Watchdog(lambda: False, 1))
    lines = (tmp_path / "t.log").read_text().splitlines()
    assert [line for line in lines if "Copr timeout" in line] == [
        " !! Copr timeout => sending INT",
        " !! Copr timeout => sending TERM",
    ]
