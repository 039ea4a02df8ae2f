"""Forking a project with builds: the request writes rows, the sign queue makes the fork's key,
copies and re-signs the RPMs, and dnf installs them from the fork's own repository."""

from pathlib import Path

import dramatiq
import pytest
import requests
from django.conf import settings
from dramatiq.brokers.stub import StubBroker

from apps.builds.models import BuildTask, State
from apps.projects.models import Project
from apps.repos.models import KeyState, SigningKey
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build, wait_for
from tests.e2e.test_copr_cli import cli_for
from tests.e2e.test_pipeline import submit_upload
from tests.factories import UserFactory
from tests.queues import queued_actor_names
from tests.repos.rpm_helpers import dnf_install_into, import_public_key, rpm_checksig

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
X86 = "fedora-43-x86_64"


def fork_rpm(fork: Project) -> Path:
    task = BuildTask.objects.get(build__project=fork)
    return (
        Path(settings.RESULTS_ROOT)
        / fork.ownername
        / fork.name
        / task.result_dir
        / task.result_files[0]
    )


def test_fork_signs_on_the_sign_queue_and_dnf_installs_from_the_fork(
    live_server, worker, packager, tmp_path
):
    _, token, original = packager
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)
    build = finished_build(submit_upload(live_server, token, srpm))
    assert build.state == State.SUCCEEDED, list(build.tasks.values("state", "state_reason"))

    # The request alone: no worker runs while copr-cli forks.
    worker.pause()
    bob_cli = cli_for(live_server, tmp_path, UserFactory(username="bob"))
    forked = bob_cli("fork", "packager/tools", "bob/tools-fork")
    assert "Forking project packager/tools for you into bob/tools-fork" in forked.stdout
    fork = Project.objects.get(name="tools-fork", owner_user__username="bob")
    assert not SigningKey.objects.filter(project=fork, state=KeyState.READY).exists()
    assert not (Path(settings.KEYS_ROOT) / "bob").exists(), "the request made a key"
    task = BuildTask.objects.get(build__project=fork)
    assert task.state == State.FORKED and task.ended_on is None
    assert "copying and signing" in task.state_reason
    assert not fork_rpm(fork).exists(), "the request copied the RPMs"
    fork_page = f"{live_server.url}/coprs/bob/tools-fork/"
    assert "Fork in progress" in requests.get(fork_page, timeout=30).text
    if isinstance(dramatiq.get_broker(), StubBroker):
        assert "publish_fork" in queued_actor_names(dramatiq.get_broker(), "sign")
    worker.resume()

    def copied():
        task.refresh_from_db()
        return task.ended_on is not None

    wait_for(copied, timeout=120, what="the fork's RPMs to be copied and signed")
    assert task.state == State.FORKED and task.result_files, task.state_reason
    key = SigningKey.objects.get(project=fork, state=KeyState.READY)
    original_key = SigningKey.objects.get(project=original)
    assert key.fingerprint != original_key.fingerprint
    pubkey = tmp_path / "fork-pubkey.gpg"
    pubkey.write_text(key.public_key)
    import_public_key(pubkey, dbpath=tmp_path / "rpmdb")
    checked = rpm_checksig(fork_rpm(fork), dbpath=tmp_path / "rpmdb")
    assert checked.returncode == 0, checked.stdout
    assert f"key ID {key.fingerprint[-8:].lower()}: OK" in checked.stdout
    assert "Fork in progress" not in requests.get(fork_page, timeout=30).text

    def published():
        return fork.repositories.filter(chroot__name=X86, published_serial__gte=1).exists()

    wait_for(published, timeout=120, what="the fork's repository to be published")
    repo = requests.get(
        f"{live_server.url}/coprs/bob/tools-fork/repo/fedora-43/dnf.repo?arch=x86_64", timeout=30
    )
    assert repo.status_code == 200 and "gpgcheck=1" in repo.text, repo.text
    reposdir = tmp_path / "yum.repos.d"
    reposdir.mkdir()
    (reposdir / "tools-fork.repo").write_text(repo.text)
    installed = dnf_install_into(tmp_path / "root", reposdir, "hello")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert (tmp_path / "root/usr/bin/hello").exists()
