"""apps/fleet/selectors.py, through build_submit: a build for arches no pool serves is refused;
a build with some served chroots reports the others per chroot."""

import pytest

from apps.builds.lifecycle import build_refresh_state
from apps.builds.models import Build, State
from apps.builds.services import BuildOptions, build_submit, chroot_tasks_create
from apps.core.errors import ServiceError
from apps.fleet.models import BuilderPool
from apps.fleet.selectors import served_arches
from apps.fleet.services import host_arch, local_pool_ensure
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db
SCM = {"clone_url": "https://example.org/hello.git"}
HOST = f"fedora-43-{host_arch()}"
# An arch this host's local pool does not build for.
OTHER_ARCH = "aarch64" if host_arch() != "aarch64" else "x86_64"
OTHER = f"fedora-43-{OTHER_ARCH}"


def submit(project, **options):
    return build_submit(
        user=project.owner_user, project=project, source_type="scm", source_json=SCM,
        options=BuildOptions(**options),
    )  # fmt: skip


def test_a_fresh_install_serves_the_host_arch_before_the_local_pool_exists():
    assert not BuilderPool.objects.exists()
    assert served_arches() == {host_arch()}
    local_pool_ensure()
    assert served_arches() == {host_arch()}


def test_a_named_chroot_of_an_unserved_arch_is_refused_with_the_arch():
    project = ProjectFactory(chroot_names=[HOST, OTHER])
    with pytest.raises(ServiceError) as refused:
        submit(project, chroots=[OTHER])
    assert refused.value.status == 400
    assert f"No builder serves the architecture {OTHER_ARCH} ({OTHER})" in refused.value.message
    assert not Build.objects.exists()


def test_unserved_chroots_of_a_multi_chroot_build_fail_each_with_the_reason():
    project = ProjectFactory(chroot_names=[HOST, OTHER])
    for build in (submit(project), submit(project, chroots=["fedora-43-*"])):
        assert sorted(build.requested_chroots) == sorted([HOST, OTHER])
        build.tasks.filter(chroot=None).update(state=State.SUCCEEDED)  # the SRPM is made
        chroot_tasks_create(build=build, header={"name": "hello"})
        build_refresh_state(build_id=build.pk)
        tasks = {task.chroot.name: task for task in build.tasks.exclude(chroot=None)}
        assert tasks[HOST].state == State.PENDING and tasks[HOST].state_reason == ""
        assert tasks[OTHER].state == State.FAILED and tasks[OTHER].ended_on is not None
        assert tasks[OTHER].state_reason.startswith(
            f"No builder serves the architecture {OTHER_ARCH} ({OTHER})"
        )
        build.refresh_from_db()
        assert build.state == State.PENDING  # the served chroot still builds


def test_a_project_with_only_unserved_chroots_is_refused():
    project = ProjectFactory(chroot_names=[OTHER])
    with pytest.raises(ServiceError, match=f"architecture {OTHER_ARCH}"):
        submit(project)


def test_an_enabled_pool_for_the_arch_lets_the_build_in():
    local_pool_ensure()
    pool = BuilderPool.objects.create(name="arm", kind="ssh", arches=[OTHER_ARCH])
    project = ProjectFactory(chroot_names=[HOST, OTHER])
    assert submit(project, chroots=[OTHER]).requested_chroots == [OTHER]
    BuilderPool.objects.filter(pk=pool.pk).update(enabled=False)
    with pytest.raises(ServiceError):
        submit(project, chroots=[OTHER])
