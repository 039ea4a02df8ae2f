"""The Pulp repository store (apps/repos/stores/pulp.py) against a real Pulp: publishing,
deleting, Pulp going down and coming back, devel mode, forks; dnf installs from Pulp's
content app with gpgcheck on."""

import shutil
from pathlib import Path

import django.conf
import pytest
import requests

from apps.builds.models import BuildTask, State
from apps.repos.models import Repository
from apps.repos.services import project_key_ensure, project_publish, repository_regenerate
from apps.repos.stores.pulp import pulp_context, repository_name
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, chroot
from tests.repos.rpm_helpers import HELLO_OUTPUT, build_rpm, dnf_install_into

pytestmark = pytest.mark.django_db(transaction=True)
CHROOT = "fedora-43-x86_64"


@pytest.fixture
def pulp_store(settings, pulp_server):
    """This instance publishes into the test process's Pulp."""
    settings.REPOSITORY_STORE = "pulp"
    settings.PULP_URL = pulp_server.api_url
    settings.PULP_CONTENT_URL = pulp_server.content_url
    settings.PULP_USERNAME = "admin"
    settings.PULP_PASSWORD = pulp_server.admin_password
    settings.PULP_TASK_TIMEOUT = 120
    return pulp_server


@pytest.fixture
def project(settings, tmp_path, pulp_store):
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.RESULTS_ROOT = tmp_path / "results"
    settings.PUBLIC_URL = "http://copr.example.org"
    project = ProjectFactory()
    project_key_ensure(project=project)
    return project


def built_task(project, rpms: list[Path]) -> BuildTask:
    """A task its builder has finished: RPMs in its result dir, waiting for signing."""
    build = BuildFactory(project=project, state=State.RUNNING)
    package_name = rpms[0].name.rsplit("-", 2)[0]
    task = BuildTaskFactory(
        build=build,
        chroot=chroot(CHROOT),
        state=State.RUNNING,
        builder=None,
        result_dir=f"{CHROOT}/{build.pk:08d}-{package_name}",
        result_files=[rpm.name for rpm in rpms],
    )
    result_dir = task_dir(project, task)
    result_dir.mkdir(parents=True)
    for rpm in rpms:
        shutil.copy(rpm, result_dir)
    return task


def task_dir(project, task: BuildTask) -> Path:
    results = Path(django.conf.settings.RESULTS_ROOT)
    return results / project.ownername / project.name / task.result_dir


def publish(project) -> Repository:
    """Sign what waits, then run the repository's store (what the actors do in turn)."""
    project_publish(project=project)
    repository = Repository.objects.get(project=project)
    repository_regenerate(repository_id=repository.pk)
    repository.refresh_from_db()
    return repository


def pulp_packages(repository: Repository) -> list[dict]:
    """The packages of the Pulp repository's latest version, with their labels."""
    context = pulp_context()
    [found] = context.call(
        "repositories_rpm_rpm_list", parameters={"name": repository_name(repository)}
    )["results"]
    listing = context.call(
        "content_rpm_packages_list",
        parameters={
            "repository_version": found["latest_version_href"],
            "fields": ["name", "pulp_labels"],
            "limit": 1000,
        },
    )
    return listing["results"]


def served_repo_file(client, project, tmp_path: Path) -> Path:
    """The .repo file `dnf copr enable` would download, with its gpgkey read from disk (the
    results tree is not served in this test; the baseurl is Pulp's, untouched)."""
    response = client.get(f"/coprs/{project.ownername}/{project.name}/repo/fedora-43/")
    assert response.status_code == 200
    text = response.content.decode()
    pubkey = Path(django.conf.settings.RESULTS_ROOT) / project.ownername / project.name
    lines = [
        f"gpgkey=file://{pubkey / 'pubkey.gpg'}" if line.startswith("gpgkey=") else line
        for line in text.splitlines()
    ]
    repos_dir = tmp_path / "repos.d"
    repos_dir.mkdir(exist_ok=True)
    (repos_dir / "copr.repo").write_text("\n".join(lines) + "\n")
    return repos_dir


def test_a_published_build_installs_from_pulp_with_gpgcheck(project, tmp_path, client):
    rpms = build_rpm(tmp_path / "rpms", with_srpm=True)
    task = built_task(project, rpms)

    repository = publish(project)

    task.refresh_from_db()
    assert task.state == State.SUCCEEDED
    assert (repository.package_count, repository.is_current) == (2, True)
    labels = {(p["name"], p["pulp_labels"]["build_id"]) for p in pulp_packages(repository)}
    assert labels == {("hello", str(task.build_id))}  # the binary and the source package
    assert all(p["pulp_labels"]["chroot"] == CHROOT for p in pulp_packages(repository))

    repos_dir = served_repo_file(client, project, tmp_path)
    text = (repos_dir / "copr.repo").read_text()
    expected = f"{project_url(project)}/fedora-$releasever-$basearch/"
    assert f"baseurl={expected}\n" in text
    assert "gpgcheck=1\n" in text
    # The metadata really is served by Pulp's content app, not by the results tree.
    served = requests.get(f"{project_url(project)}/{CHROOT}/repodata/repomd.xml", timeout=10)
    assert served.status_code == 200
    assert not (task_dir(project, task).parent / "repodata").exists()

    installroot = tmp_path / "root"
    installed = dnf_install_into(installroot, repos_dir, "hello")
    assert installed.returncode == 0, installed.stderr
    script = (installroot / "usr/bin/hello").read_text()
    assert HELLO_OUTPUT in script


def project_url(project) -> str:
    return f"{django.conf.settings.PULP_CONTENT_URL}/{project.ownername}/{project.name}"
