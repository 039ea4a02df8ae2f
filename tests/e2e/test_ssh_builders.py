"""Builds on SSH builder hosts, with the real worker: each host is a network namespace with
its own sshd, host key and authorized key (tests/builders/ssh_helpers.py)."""

import http.server
import threading
import time
from pathlib import Path

import pytest
import requests
from django.conf import settings

from apps.builds.logs import read_log
from apps.builds.models import Build, BuildTask, State
from apps.builds.services import build_cancel
from apps.fleet.models import Builder, BuilderPool, BuilderState, PoolKind
from apps.fleet.services import local_pool_ensure, ssh_pool_sync
from builders.transports.ssh import runner_version
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build, wait_for
from tests.e2e.test_pipeline import install_from_served_repo, submit_upload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def only_ssh_pool(hosts, **host_overrides) -> list[Builder]:
    """An ssh pool of these hosts; the local pool is switched off so nothing builds here."""
    local_pool_ensure()
    BuilderPool.objects.filter(kind=PoolKind.LOCAL).update(enabled=False)
    pool = BuilderPool.objects.create(
        name="ssh",
        kind=PoolKind.SSH,
        arches=["x86_64"],
        config={"hosts": [host.pool_host_config(**host_overrides) for host in hosts]},
    )
    return ssh_pool_sync(pool=pool)


def live_log(task: BuildTask) -> str:
    """builder-live.log as it is now: plain while the task runs, gzipped once it ended."""
    result_dir = Path(settings.RESULTS_ROOT) / "packager/tools" / task.result_dir
    try:
        return read_log(result_dir, "builder-live.log")
    except OSError:
        return ""


def rpm_task(build_id: int) -> BuildTask:
    return BuildTask.objects.get(build_id=build_id, chroot__name="fedora-43-x86_64")


def build_started(build_id: int) -> bool:
    """The RPM task's build script has printed BUILD-STARTED into the live log."""
    task = BuildTask.objects.filter(build_id=build_id, chroot__name="fedora-43-x86_64").first()
    return task is not None and "BUILD-STARTED" in live_log(task)


def test_a_build_on_an_ssh_host_is_signed_published_and_installed(
    live_server, worker, packager, tmp_path, ssh_hosts
):
    (host,) = ssh_hosts(1)
    (builder,) = only_ssh_pool([host])
    _, token, _ = packager
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)

    build = finished_build(submit_upload(live_server, token, srpm, chroots=["fedora-43-x86_64"]))

    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    # An uploaded SRPM needs no builder (its source task only files it); the RPM does.
    assert "Builder host ssh-host0" in live_log(rpm_task(build.pk))
    # The host's rpmbuild is no Fedora buildroot, and the build page says so.
    assert rpm_task(build.pk).buildroot.startswith("host buildroot: BuildRequires were not")
    page = requests.get(f"{live_server.url}/builds/{build.pk}/", timeout=30).text
    assert "host buildroot: BuildRequires were not installed" in page
    result, _ = install_from_served_repo(live_server, tmp_path, "hello")  # gpgcheck=1
    assert result.returncode == 0, result.stdout + result.stderr
    builder.refresh_from_db()
    assert builder.runner_version == runner_version()
    assert builder.state == BuilderState.READY


def test_two_builds_run_in_parallel_one_on_each_host(
    live_server, worker, packager, tmp_path, ssh_hosts
):
    hosts = ssh_hosts(2)
    only_ssh_pool(hosts)
    _, token, _ = packager
    build_ids = [
        submit_upload(
            live_server,
            token,
            make_srpm(tmp_path / name, name=name, build_script=f"sleep 8; gcc -o {name} hello.c"),
            chroots=["fedora-43-x86_64"],
        )
        for name in ("first", "second")
    ]

    wait_for(
        lambda: (
            BuildTask.objects.filter(
                build_id__in=build_ids, chroot__isnull=False, state=State.RUNNING
            ).count()
            == 2
        ),
        what="both RPM tasks to run at once",
    )
    on = set(
        BuildTask.objects.filter(build_id__in=build_ids, chroot__isnull=False).values_list(
            "builder__name", flat=True
        )
    )
    assert on == {"ssh-host0", "ssh-host1"}
    for build_id in build_ids:
        build = finished_build(build_id)
        assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))


@pytest.mark.parametrize(
    ("wrong", "reason"),
    [
        ("known_host_key", "its SSH host key is not the one the pool knows (not accepted"),
        ("key_path", "refused the pool's SSH key"),
    ],
)
def test_a_wrong_host_key_or_a_refused_key_fails_the_task_with_the_reason(
    live_server, worker, packager, tmp_path, ssh_hosts, wrong, reason
):
    host, stranger = ssh_hosts(2)
    wrong_value = {
        "known_host_key": stranger.host_public_key,
        "key_path": str(stranger.client_key),
    }[wrong]
    (builder,) = only_ssh_pool([host], **{wrong: wrong_value})
    _, token, _ = packager

    build = finished_build(
        submit_upload(live_server, token, make_srpm(tmp_path), chroots=["fedora-43-x86_64"])
    )

    assert build.state == State.FAILED
    assert reason in rpm_task(build.pk).state_reason
    builder.refresh_from_db()
    assert builder.state == BuilderState.DOWN and reason in builder.state_reason
    assert not (host.work_dir / "runner").exists()  # nothing was installed or run there


def test_a_host_lost_mid_build_requeues_the_task_on_the_other_host(
    live_server, worker, packager, tmp_path, ssh_hosts
):
    hosts = ssh_hosts(2)
    only_ssh_pool(hosts)
    _, token, _ = packager
    srpm = make_srpm(
        tmp_path,
        name="slow",
        build_script="echo BUILD-STARTED; sleep 10; gcc -o slow hello.c",
        auto_req_prov=False,
    )
    build_id = submit_upload(live_server, token, srpm, chroots=["fedora-43-x86_64"])
    wait_for(lambda: build_started(build_id), what="the build to start")
    first = rpm_task(build_id).builder
    lost_host = hosts[0] if first.name == "ssh-host0" else hosts[1]

    lost_host.kill_everything()

    build = finished_build(build_id)
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    task = rpm_task(build_id)
    assert task.attempt == 1
    other = "ssh-host1" if first.name == "ssh-host0" else "ssh-host0"
    assert f"Builder host {other}" in live_log(task)
    first.refresh_from_db()
    assert first.state == BuilderState.DOWN
    assert "connection broke during the build" in first.state_reason


def test_cancel_leaves_no_process_on_the_host(live_server, worker, packager, tmp_path, ssh_hosts):
    (host,) = ssh_hosts(1)
    only_ssh_pool([host])
    user, token, _ = packager
    srpm = make_srpm(tmp_path, name="sleepy", build_script="echo BUILD-STARTED; sleep 600")
    build_id = submit_upload(live_server, token, srpm, chroots=["fedora-43-x86_64"])
    wait_for(lambda: build_started(build_id), what="the build to start")
    assert host.processes()  # sshd's session, the runner and the build

    build_cancel(user=user, build=Build.objects.get(pk=build_id))
    canceled_at = time.monotonic()

    wait_for(lambda: rpm_task(build_id).state == State.CANCELED, timeout=30, what="cancel")
    wait_for(lambda: host.processes() == [], timeout=20, what="no process left on the host")
    assert time.monotonic() - canceled_at < 30
    assert requests.get(live_server.url, timeout=10).status_code == 200


def test_a_hostile_build_on_an_ssh_host_sees_no_portal_file_and_cannot_reach_the_service(
    live_server, worker, packager, tmp_path, ssh_hosts
):
    (host,) = ssh_hosts(1)
    only_ssh_pool([host])
    _, token, _ = packager
    # A port of the service's machine on the host's link, as a database or broker would be.
    service = http.server.ThreadingHTTPServer((host.gateway, 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    probes = {
        "SECRET": f"cat {Path(settings.VAR_DIR) / 'secret_key'}",
        "KEYS": f"ls {settings.KEYS_ROOT}",
        "RESULTS": f"ls {settings.RESULTS_ROOT}",
        "DATABASE": f"head -c 16 {settings.DATABASES['default']['NAME']}",
        "PORTAL": f"ls {settings.BASE_DIR}",
        "SERVICE": f"curl -sS --max-time 5 http://{host.gateway}:{service.server_port}/",
    }
    script = "; ".join(
        f"if {command} >/dev/null 2>&1; then echo {name}=VISIBLE; else echo {name}=HIDDEN; fi"
        for name, command in probes.items()
    )
    srpm = make_srpm(tmp_path, name="hostile", build_script=f"{script}; gcc -o hostile hello.c")
    build_id = submit_upload(live_server, token, srpm, enable_net=True)
    # The service port answers from here, so HIDDEN below is the build's wall, not luck.
    assert requests.get(f"http://{host.gateway}:{service.server_port}/", timeout=5).status_code

    build = finished_build(build_id)

    try:
        log = live_log(rpm_task(build.pk))
        assert build.state == State.SUCCEEDED, log
        assert "Builder host ssh-host0" in log
        for name in probes:
            assert f"{name}=HIDDEN" in log, log
    finally:
        service.shutdown()
