"""The Pulp repository store (apps/repos/stores/pulp.py) against a real Pulp: publishing,
deleting, Pulp going down and coming back, devel mode, forks; dnf installs from Pulp's
content app with gpgcheck on."""

import shutil
from pathlib import Path

import django.conf
import dramatiq
import pytest
import requests

from apps.builds.models import BuildTask, State
from apps.builds.services import build_delete
from apps.projects.build_config import build_repos
from apps.projects.models import Project
from apps.repos import actors
from apps.repos.models import Repository
from apps.repos.services import (
    forked_results_publish,
    project_key_ensure,
    project_publish,
    repositories_request_publish,
    repository_regenerate,
)
from apps.repos.stores.pulp import pulp_context, repository_name
from apps.workflows.projects import project_delete, project_fork
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, UserFactory, chroot
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


def test_a_deleted_build_leaves_the_pulp_repository(project, tmp_path):
    kept = built_task(project, build_rpm(tmp_path / "hello"))
    deleted = built_task(project, build_rpm(tmp_path / "world", name="world"))
    repository = publish(project)
    assert sorted(p["name"] for p in pulp_packages(repository)) == ["hello", "world"]
    deleted.build.refresh_from_db()

    build_delete(user=project.owner_user, build=deleted.build)
    # What the remove_build_results message that build_delete sends does (by name).
    actors.remove_build_results.fn(
        project.pk, project.ownername, project.name, [deleted.result_dir], [deleted.chroot_id]
    )
    repository_regenerate(repository_id=repository.pk)

    repository.refresh_from_db()
    assert (repository.package_count, repository.is_current) == (1, True)
    assert [(p["name"], p["pulp_labels"]["build_id"]) for p in pulp_packages(repository)] == [
        ("hello", str(kept.build_id))
    ]
    served = requests.get(f"{project_url(project)}/{CHROOT}/repodata/repomd.xml", timeout=10)
    assert served.status_code == 200


def test_publishing_waits_while_pulp_is_down_and_ends_when_it_is_back(
    project, tmp_path, pulp_store, broker
):
    first = built_task(project, build_rpm(tmp_path / "hello"))
    repository = publish(project)
    first.refresh_from_db()
    assert first.state == State.SUCCEEDED

    pulp_store.stop()
    try:
        waiting = built_task(project, build_rpm(tmp_path / "world", name="world"))
        project_publish(project=project)  # signing needs no Pulp
        for attempt in range(3):  # the retries the backoff sends, run at once here
            assert repository_regenerate(repository_id=repository.pk, attempt=attempt) == 0
            waiting.refresh_from_db()
            repository.refresh_from_db()
            assert waiting.state == State.RUNNING and waiting.publish_serial is not None
            assert "Pulp is unavailable" in repository.last_error
            assert not repository.is_current
    finally:
        pulp_store.start()

    assert repository_regenerate(repository_id=repository.pk, attempt=3) == 1
    waiting.refresh_from_db()
    repository.refresh_from_db()
    assert waiting.state == State.SUCCEEDED
    assert (repository.package_count, repository.is_current, repository.last_error) == (2, True, "")
    assert sorted(p["name"] for p in pulp_packages(repository)) == ["hello", "world"]


def test_an_unavailable_store_sends_its_retry_later_with_backoff(
    project, tmp_path, pulp_store, stub_broker
):
    built_task(project, build_rpm(tmp_path / "hello"))
    project_publish(project=project)
    repository = Repository.objects.get(project=project)
    stub_broker.flush_all()
    pulp_store.stop()
    try:
        assert repository_regenerate(repository_id=repository.pk, attempt=2) == 0
    finally:
        pulp_store.start()

    [raw] = list(stub_broker.queues["repos.DQ"].queue)
    message = dramatiq.Message.decode(raw)
    assert (message.actor_name, message.args) == ("regenerate_repository", (repository.pk, 3))
    assert message.options["eta"] - message.message_timestamp >= 8000  # 2 ** 3 seconds


def distributed_packages(name: str) -> list[str]:
    """Names of the packages the distribution `name` serves (through its publication)."""
    context = pulp_context()
    [distribution] = context.call("distributions_rpm_rpm_list", parameters={"name": name})[
        "results"
    ]
    publication = context.call(
        "publications_rpm_rpm_read",
        parameters={"rpm_rpm_publication_href": distribution["publication"]},
    )
    listing = context.call(
        "content_rpm_packages_list",
        parameters={"repository_version": publication["repository_version"], "fields": ["name"]},
    )
    return sorted(package["name"] for package in listing["results"])


def test_devel_mode_publishes_into_the_devel_distribution_until_regenerated(project, tmp_path):
    Project.objects.filter(pk=project.pk).update(devel_mode=True)
    project.refresh_from_db()
    built_task(project, build_rpm(tmp_path / "hello"))
    repository = publish(project)
    public = repository_name(repository)
    devel = f"{public}-devel"
    assert distributed_packages(devel) == ["hello"]
    assert distributed_packages(public) == []  # the public repository waits for a regenerate

    # Builds of the project see the devel repository (Pulp has no subdirectories).
    project_chroot = project.project_chroots.get()
    devel_repo = build_repos(project_chroot)[1]
    assert devel_repo["baseurl"] == f"{project_url(project)}/{CHROOT}-devel/"
    served = requests.get(f"{devel_repo['baseurl']}repodata/repomd.xml", timeout=10)
    assert served.status_code == 200

    repositories_request_publish(
        project=project, project_dirname=project.name, chroots=[chroot(CHROOT)]
    )
    repository_regenerate(repository_id=repository.pk)
    assert distributed_packages(public) == ["hello"]

    built_task(project, build_rpm(tmp_path / "world", name="world"))
    publish(project)
    assert distributed_packages(devel) == ["hello", "world"]
    # Still served although newer versions came: the distributed version is kept.
    assert distributed_packages(public) == ["hello"]
    served = requests.get(f"{project_url(project)}/{CHROOT}/repodata/repomd.xml", timeout=10)
    assert served.status_code == 200


def test_a_fork_publishes_its_copies_into_its_own_pulp_repository(
    project, tmp_path, client, settings
):
    original_task = built_task(project, build_rpm(tmp_path / "hello"))
    publish(project)
    fork, _ = project_fork(
        user=UserFactory(username="bob"), project=project, ownername="bob", name="fork"
    )
    forked = BuildTask.objects.get(build__project=fork)
    assert forked.forked_from_id == original_task.pk

    # What the publish_fork message does: copy, re-sign with the fork's key, publish.
    forked_results_publish(project=fork, task_pairs=[[original_task.pk, forked.pk]])
    repository = Repository.objects.get(project=fork)
    repository_regenerate(repository_id=repository.pk)

    forked.refresh_from_db()
    assert forked.state == State.FORKED and forked.ended_on is not None
    assert [(p["name"], p["pulp_labels"]["build_id"]) for p in pulp_packages(repository)] == [
        ("hello", str(forked.build_id))
    ]
    repos_dir = served_repo_file(client, fork, tmp_path)
    installed = dnf_install_into(tmp_path / "root", repos_dir, "hello")
    assert installed.returncode == 0, installed.stderr  # signed with the fork's own key


def test_a_deleted_project_leaves_pulp_and_spares_its_neighbour(project, tmp_path):
    built_task(project, build_rpm(tmp_path / "hello"))
    project.devel_mode = True  # a devel distribution too
    project.save(update_fields=["devel_mode"])
    publish(project)
    neighbour = ProjectFactory(owner_user=project.owner_user, name=f"{project.name}-2")
    project_key_ensure(project=neighbour)
    built_task(neighbour, build_rpm(tmp_path / "world", name="world"))
    publish(neighbour)
    assert pulp_names(project) == {f"{CHROOT}", f"{CHROOT}-devel"}

    project_delete(user=project.owner_user, project=project)
    # What the remove_project_results message that project_delete sends does (by name).
    actors.remove_project_results.fn(project.ownername, [project.name])

    assert pulp_names(project) == set()
    assert pulp_names(neighbour) == {CHROOT}
    served = requests.get(f"{project_url(project)}/{CHROOT}/repodata/repomd.xml", timeout=10)
    assert served.status_code == 404
    served = requests.get(f"{project_url(neighbour)}/{CHROOT}/repodata/repomd.xml", timeout=10)
    assert served.status_code == 200


def pulp_names(project) -> set[str]:
    """The chroot part of the project's Pulp repositories' and distributions' names."""
    context = pulp_context()
    prefix = f"{project.ownername}/{project.name}/"
    names = set()
    for listing in ("repositories_rpm_rpm_list", "distributions_rpm_rpm_list"):
        page = context.call(listing, parameters={"name__startswith": prefix, "limit": 100})
        names |= {found["name"].removeprefix(prefix) for found in page["results"]}
    return names


def test_pulp_keeps_the_newest_builds_of_each_package_when_the_project_prunes(
    project, tmp_path, settings
):
    settings.PULP_RETAIN_BUILDS = 2
    hellos = [
        named(built_task(project, build_rpm(tmp_path / v, version=v)), "hello")
        for v in ("1.0", "1.1", "1.2")
    ]
    world = named(built_task(project, build_rpm(tmp_path / "world", name="world")), "world")

    repository = publish(project)

    kept = {(p["name"], p["pulp_labels"]["build_id"]) for p in pulp_packages(repository)}
    assert kept == {("hello", str(t.build_id)) for t in hellos[1:]} | {
        ("world", str(world.build_id))
    }

    project.auto_prune = False  # the owner asked staff to keep everything: the next run
    project.save(update_fields=["auto_prune"])  # (here asked for) lists every build again
    repositories_request_publish(
        project=project, project_dirname=project.name, chroots=[repository.chroot]
    )
    repository_regenerate(repository_id=repository.pk)
    assert len(pulp_packages(repository)) == 4


def named(task: BuildTask, package: str) -> BuildTask:
    task.build.package_name = package
    task.build.save(update_fields=["package_name"])
    return task
