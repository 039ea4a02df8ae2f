"""apps/fleet/selectors.py, through build_submit: a build for an arch no pool serves is refused."""

import pytest

from apps.builds.models import Build
from apps.builds.services import BuildOptions, build_submit
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


def test_all_chroots_by_default_builds_only_the_served_ones():
    project = ProjectFactory(chroot_names=[HOST, OTHER])
    build = submit(project)
    assert build.requested_chroots == [HOST]
    assert submit(project, chroots=["fedora-43-*"]).requested_chroots == [HOST]


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
