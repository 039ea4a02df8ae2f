"""Package services: add, edit, reset, delete, build, with their permission and input checks."""

import pytest

from apps.builds.models import Build, BuildTask, State
from apps.builds.package_builds import package_build, package_delete
from apps.builds.services import BuildOptions
from apps.core.errors import Conflict, PermissionDenied, ServiceError
from apps.packages.models import Package
from apps.packages.services import (
    package_add,
    package_edit,
    package_reset,
)
from tests.factories import BuildFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db

SCM = {"clone_url": "https://git.example.org/hello.git", "committish": "main", "spec": "hello.spec"}


@pytest.fixture
def project():
    return ProjectFactory(chroot_names=["fedora-43-x86_64", "fedora-44-x86_64"])


def add(project, **overrides):
    arguments = {"name": "hello", "source_type": "scm", "source_json": dict(SCM)} | overrides
    return package_add(user=project.owner_user, project=project, **arguments)


def test_add_stores_the_source(project):
    package = add(project, webhook_rebuild=True, max_builds=0, chroot_denylist=["*-44-*"])
    assert package.source_json == SCM
    assert package.webhook_rebuild is True
    assert package.max_builds is None  # Copr: 0 keeps every build
    assert package.chroot_denylist == ["*-44-*"]


def test_add_refuses_a_stranger(project):
    with pytest.raises(PermissionDenied):
        package_add(
            user=UserFactory(), project=project, name="x", source_type="scm", source_json=SCM
        )
    assert not Package.objects.exists()


@pytest.mark.parametrize(
    "source_type, source_json, message",
    [
        ("scm", {}, "clone_url: This field is required"),
        ("scm", {**SCM, "srpm_build_method": "magic"}, "srpm_build_method"),
        ("scm", {**SCM, "subdirectory": "../up"}, "inside the repository"),
        ("scm", {**SCM, "clone_url": "file:///etc"}, "clone_url"),
        ("pypi", {"pypi_package_name": "a b"}, "Invalid PyPI package name"),
        ("pypi", {"pypi_package_name": "x", "spec_generator": "y"}, "spec_generator"),
        ("rubygems", {}, "gem_name: This field is required"),
        ("custom", {"script": "x" * 5000, "chroot": "fedora-43-x86_64"}, "longer than 4096"),
        ("custom", {"script": "true", "chroot": "nope-1-x86_64"}, "does not exist"),
        ("distgit", {}, "No DistGit instance"),
        ("upload", {}, "Unsupported source type 'upload'"),
        ("nonsense", {}, "Unsupported source type"),
    ],
)
def test_add_rejects_bad_sources(project, source_type, source_json, message):
    with pytest.raises(ServiceError, match=message):
        add(project, source_type=source_type, source_json=source_json)
    assert not Package.objects.exists()


def test_add_rejects_bad_names_and_duplicates(project):
    with pytest.raises(ServiceError, match="name"):
        add(project, name="bad name")
    add(project)
    with pytest.raises(Conflict, match="already exists"):
        add(project)


def test_edit_merges_source_json(project):
    package = add(project)
    package_edit(
        user=project.owner_user, package=package, source_json={"committish": "v2"}, timeout=600
    )
    package.refresh_from_db()
    assert package.source_json == {**SCM, "committish": "v2"}
    assert package.timeout == 600


def test_edit_to_another_type_starts_afresh(project):
    package = add(project)
    package_edit(
        user=project.owner_user,
        package=package,
        source_type="rubygems",
        source_json={"gem_name": "rake"},
    )
    package.refresh_from_db()
    assert (package.source_type, package.source_json) == ("rubygems", {"gem_name": "rake"})


def test_edit_rejects_unknown_fields_and_keeps_the_row(project):
    package = add(project)
    with pytest.raises(ServiceError, match="Unknown package setting"):
        package_edit(user=project.owner_user, package=package, name="other")
    with pytest.raises(ServiceError, match="timeout"):
        package_edit(user=project.owner_user, package=package, timeout=10**9)
    package.refresh_from_db()
    assert package.timeout is None


def test_reset_forgets_the_source(project):
    package = add(project, webhook_rebuild=True)
    package_reset(user=project.owner_user, package=package)
    package.refresh_from_db()
    assert (package.source_type, package.source_json, package.webhook_rebuild) == (
        "unset",
        {},
        False,
    )
    with pytest.raises(ServiceError, match="has no source"):
        package_build(user=project.owner_user, package=package, options=BuildOptions())


def test_build_uses_source_denylist_and_timeout(project):
    package = add(project, chroot_denylist=["fedora-44-*"], timeout=1234)
    build = package_build(user=project.owner_user, package=package, options=BuildOptions())
    assert build.package == package
    assert build.requested_chroots == ["fedora-43-x86_64"]
    assert build.timeout == 1234
    assert (build.source_type, build.source_json) == ("scm", SCM)
    assert BuildTask.objects.get(build=build).is_source


def test_denylist_matching_everything_keeps_all_chroots(project):
    package = add(project, chroot_denylist=["*"])
    build = package_build(user=project.owner_user, package=package, options=BuildOptions())
    assert sorted(build.requested_chroots) == ["fedora-43-x86_64", "fedora-44-x86_64"]


def test_build_needs_builder_permission(project):
    package = add(project)
    with pytest.raises(PermissionDenied):
        package_build(user=UserFactory(), package=package, options=BuildOptions())
    assert not Build.objects.exists()


def test_delete_refuses_while_a_build_runs_then_deletes_builds(project):
    package = add(project)
    running = BuildFactory(project=project, package=package, state=State.RUNNING)
    with pytest.raises(Conflict, match="unfinished builds"):
        package_delete(user=project.owner_user, package=package)
    Build.objects.filter(pk=running.pk).update(state=State.SUCCEEDED)
    package_delete(user=project.owner_user, package=package)
    assert not Package.objects.exists()
    assert not Build.objects.exists()
