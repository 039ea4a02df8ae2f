"""From an SRPM to a signed repository that dnf installs from: the real pipeline, end to end.

Live server, real Dramatiq worker, bubblewrap sandboxes, rpmbuild, rpmsign, createrepo_c
and dnf. Each test submits through /api/v1 and looks at what a packager would see.
"""

import subprocess
from pathlib import Path

import pytest
import requests
from django.conf import settings

from apps.builds.models import Build, BuildTask, State
from apps.fleet.models import BuilderPool
from apps.fleet.services import local_pool_ensure
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build, wait_for
from tests.repos.rpm_helpers import dnf_install_into

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def auth(token) -> tuple[str, str]:
    return (token.login, token.token)


def submit_upload(
    live_server, token, srpm: Path, chroots=("fedora-43-x86_64",), *, enable_net: bool = False
) -> int:
    data = {"chroots": list(chroots), **({"enable_net": "true"} if enable_net else {})}
    with open(srpm, "rb") as handle:
        response = requests.post(
            f"{live_server.url}/api/v1/projects/packager/tools/builds",
            files={"srpm": (srpm.name, handle, "application/x-rpm")},
            data=data,
            auth=auth(token),
            timeout=60,
        )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def install_from_served_repo(live_server, tmp_path: Path, package: str):
    """Fetch the .repo file the portal serves and let the real dnf install from it."""
    repo = requests.get(
        f"{live_server.url}/coprs/packager/tools/repo/fedora-43/dnf.repo?arch=x86_64", timeout=30
    )
    assert repo.status_code == 200, repo.text
    assert "gpgcheck=1" in repo.text
    reposdir = tmp_path / "yum.repos.d"
    reposdir.mkdir()
    (reposdir / "tools.repo").write_text(repo.text)
    installroot = tmp_path / "root"
    return dnf_install_into(installroot, reposdir, package), installroot


def test_uploaded_srpm_is_built_signed_and_installed_by_dnf(
    live_server, worker, packager, tmp_path
):
    _, token, _ = packager
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)
    build = finished_build(submit_upload(live_server, token, srpm))
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    assert build.package_name == "hello" and build.package_version == "1.0-1"

    result, installroot = install_from_served_repo(live_server, tmp_path, "hello")
    assert result.returncode == 0, result.stdout + result.stderr
    ran = subprocess.run([installroot / "usr/bin/hello"], capture_output=True, text=True)
    assert ran.stdout == "hello\n"


def test_srpm_url_is_built_and_installed(live_server, worker, packager, tmp_path, served_directory):
    _, token, _ = packager
    directory, base_url = served_directory
    srpm = make_srpm(tmp_path, name="greeter", auto_req_prov=False)
    (directory / srpm.name).write_bytes(srpm.read_bytes())
    response = requests.post(
        f"{live_server.url}/api/v1/projects/packager/tools/builds",
        json={"source_url": f"{base_url}/{srpm.name}", "chroots": ["fedora-43-x86_64"]},
        auth=auth(token),
        timeout=60,
    )
    assert response.status_code == 201, response.text
    build = finished_build(response.json()["id"])
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))
    result, installroot = install_from_served_repo(live_server, tmp_path, "greeter")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (installroot / "usr/bin/greeter").exists()


def test_failing_build_names_the_stage_and_the_error(live_server, worker, packager, tmp_path):
    _, token, _ = packager
    srpm = make_srpm(
        tmp_path, name="broken", build_script="echo 'fatal: widget.h not found' >&2; exit 1"
    )
    build = finished_build(submit_upload(live_server, token, srpm))
    assert build.state == State.FAILED
    task = build.tasks.get(chroot__name="fedora-43-x86_64")
    assert "%build" in task.state_reason
    assert "widget.h not found" in task.state_reason


def test_exclusive_arch_skips_the_other_chroot(live_server, worker, packager, tmp_path):
    _, token, _ = packager
    # A pool for aarch64 (with no machine yet) lets the build in; the SRPM then skips it.
    local_pool_ensure()
    BuilderPool.objects.create(name="arm", kind="ssh", arches=["aarch64"])
    srpm = make_srpm(tmp_path, name="onlyx86", exclusive_arch=["x86_64"], auto_req_prov=False)
    build_id = submit_upload(
        live_server, token, srpm, chroots=("fedora-43-x86_64", "fedora-43-aarch64")
    )
    build = finished_build(build_id)
    states = dict(build.tasks.filter(chroot__isnull=False).values_list("chroot__name", "state"))
    assert states == {"fedora-43-x86_64": State.SUCCEEDED, "fedora-43-aarch64": State.SKIPPED}
    assert build.state == State.SUCCEEDED
    skipped = build.tasks.get(chroot__name="fedora-43-aarch64")
    assert "ExclusiveArch" in skipped.state_reason


def test_canceled_running_build_stops_and_publishes_nothing(
    live_server, worker, packager, tmp_path
):
    _, token, _ = packager
    srpm = make_srpm(tmp_path, name="slow", build_script="sleep 600; gcc -o slow hello.c")
    build_id = submit_upload(live_server, token, srpm)
    wait_for(
        lambda: BuildTask.objects.filter(
            build_id=build_id, chroot__isnull=False, state=State.RUNNING
        ).exists(),
        what="the RPM task to run",
    )
    task = BuildTask.objects.get(build_id=build_id, chroot__name="fedora-43-x86_64")
    live_log = f"{live_server.url}/results/packager/tools/{task.result_dir}/builder-live.log"
    # The live log answers with the bytes written so far while the build runs.
    wait_for(lambda: "sleep 600" in requests.get(live_log, timeout=10).text, what="live log")
    response = requests.patch(
        f"{live_server.url}/api/v1/builds/{build_id}",
        json={"state": "canceled"},
        auth=auth(token),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    assert response.json()["state"] == State.CANCELED
    # The sandbox is killed within seconds, well before `sleep 600` would end.
    wait_for(
        lambda: BuildTask.objects.filter(
            build_id=build_id, chroot__name="fedora-43-x86_64", state=State.CANCELED
        ).exists(),
        timeout=20,
        what="the running task to stop",
    )
    assert Build.objects.get(pk=build_id).state == State.CANCELED
    chroot_dir = Path(settings.RESULTS_ROOT) / "packager/tools/fedora-43-x86_64"
    assert not list(chroot_dir.rglob("*.rpm"))
    assert not subprocess.run(["pgrep", "-f", "sleep 600"], capture_output=True).stdout


def test_hostile_build_sees_no_secrets_and_no_network(live_server, worker, packager, tmp_path):
    _, token, project = packager
    secret_key = Path(settings.VAR_DIR) / "secret_key"
    database = Path(settings.DATABASES["default"]["NAME"])
    probes = {
        "SECRET": f"cat {secret_key}",
        "KEYS": f"ls {settings.KEYS_ROOT}",
        "DATABASE": f"head -c 16 {database}",
        "PORTAL": f"ls {settings.BASE_DIR}",
        "NETWORK": f"curl -sS --max-time 5 {live_server.url}/",
    }
    script = "; ".join(
        f"if {command} >/dev/null 2>&1; then echo {name}=VISIBLE; else echo {name}=HIDDEN; fi"
        for name, command in probes.items()
    )
    srpm = make_srpm(
        tmp_path, name="hostile", build_script=f"{script}; id -u; gcc -o hostile hello.c"
    )
    build = finished_build(submit_upload(live_server, token, srpm))
    assert build.state == State.SUCCEEDED
    task = build.tasks.get(chroot__name="fedora-43-x86_64")
    log = requests.get(
        f"{live_server.url}/results/packager/tools/{task.result_dir}/builder-live.log", timeout=30
    ).text
    for name in probes:
        assert f"{name}=HIDDEN" in log, log
    assert "\n0\n" not in log  # not root inside the sandbox
    # The project's key exists, and was never inside the sandbox.
    assert (Path(settings.KEYS_ROOT) / "packager" / "tools").is_dir()
