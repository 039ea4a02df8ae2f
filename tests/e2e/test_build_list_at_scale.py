"""copr-cli and python-copr list the builds of a project with thousands of them.

copr-cli's `list-builds` pages with `limit=1000`; python-copr's `get_list` without a
pagination asks for every build at once, which the service streams.
"""

import io

import pytest
from django.core.management import call_command

from apps.builds.models import Build
from tests.e2e.test_copr_cli import cli_for
from tests.e2e.test_python_copr import client_for
from tests.factories import UserFactory, chroot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
BUILDS = 2500


@pytest.fixture
def big_project(e2e_settings, transactional_db) -> list[int]:
    chroot()  # transactional tests flush the chroot catalog; put it back
    call_command(
        "seed_scale",
        users=3,
        groups=1,
        projects=2,
        packages=50,
        builds=BUILDS,
        big_project_builds=BUILDS,
        big_project_packages=50,
        big_owner_projects=1,
        stdout=io.StringIO(),
    )
    return list(
        Build.objects.filter(project__name="bigproject").order_by("pk").values_list("pk", flat=True)
    )


def test_copr_cli_lists_thousands_of_builds(live_server, tmp_path, big_project):
    cli = cli_for(live_server, tmp_path, UserFactory(username="reader"))
    listed = cli("list-builds", "bigowner/bigproject", timeout=300)
    rows = [line.split("\t") for line in listed.stdout.splitlines() if line[:1].isdigit()]
    assert sorted(int(row[0]) for row in rows) == big_project
    newest = Build.objects.get(pk=big_project[-1])
    assert [str(newest.pk), newest.package_name, newest.state] in rows


def test_python_copr_gets_every_build_streamed_or_paged(live_server, big_project):
    client = client_for(live_server, UserFactory(username="reader"))
    everything = client.build_proxy.get_list("bigowner", "bigproject")
    assert [build.id for build in everything] == big_project
    assert all(len(build.chroots) == 4 for build in everything)
    assert everything[0].ownername == "bigowner" and everything[0].projectname == "bigproject"
    page = client.build_proxy.get_list(
        "bigowner", "bigproject", pagination={"limit": 100, "offset": 2450}
    )
    assert [build.id for build in page] == big_project[2450:]
