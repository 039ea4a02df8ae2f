"""Package selectors: latest build and latest succeeded build."""

import pytest

from apps.builds.models import State
from apps.builds.selectors import latest_builds, packages_with_latest_build
from apps.packages.models import Package
from tests.factories import BuildFactory, ProjectFactory

pytestmark = pytest.mark.django_db


def test_latest_and_latest_succeeded_builds():
    project = ProjectFactory()
    package = Package.objects.create(project=project, name="hello")
    Package.objects.create(project=project, name="never-built")
    good = BuildFactory(project=project, package=package, state=State.SUCCEEDED)
    failed = BuildFactory(project=project, package=package, state=State.FAILED)

    rows = {p.name: p for p in packages_with_latest_build(project)}

    assert (rows["hello"].latest_build_id, rows["hello"].latest_build_state) == (
        failed.pk,
        State.FAILED,
    )
    assert rows["never-built"].latest_build_id is None
    assert latest_builds(package) == (failed, good)
