"""`in_array`: membership in a list given as one parameter, on SQLite and PostgreSQL."""

import pytest

from apps.builds.models import Build, BuildTask
from tests.factories import BuildFactory, BuildTaskFactory

pytestmark = pytest.mark.django_db


def test_in_array_finds_the_rows_of_the_listed_ids():
    builds = BuildFactory.create_batch(4)
    wanted = [builds[0].pk, builds[2].pk, 10**12]
    found = Build.objects.filter(pk__in_array=wanted).values_list("pk", flat=True)
    assert set(found) == {builds[0].pk, builds[2].pk}


def test_in_array_through_a_foreign_key_and_on_an_empty_list():
    build, other = BuildFactory.create_batch(2)
    task = BuildTaskFactory(build=build)
    BuildTaskFactory(build=other)
    assert list(BuildTask.objects.filter(build__id__in_array=[build.pk])) == [task]
    assert not BuildTask.objects.filter(build__id__in_array=[]).exists()
