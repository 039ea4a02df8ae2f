"""List pages cost a fixed number of queries, however many builds there are (1 000 here)."""

import pytest
from django.urls import reverse
from django.utils import timezone

from apps.builds.models import Build, BuildTask, Priority, State
from apps.builds.views import BUILDS_PER_PAGE
from apps.packages.models import Package
from apps.site.views_packages import PACKAGES_PER_PAGE
from tests.factories import chroot

pytestmark = pytest.mark.django_db

BUILDS = 1000
PACKAGES = 20
STATES = [State.SUCCEEDED, State.FAILED, State.RUNNING, State.PENDING, State.CANCELED]
# Session, user, the project, permission checks, the page, its count, its prefetch: a handful.
MAX_QUERIES = 10


@pytest.fixture
def busy_project(personal_project, alice):
    """1 000 builds in 20 packages, each with a source task and two chroot tasks."""
    packages = Package.objects.bulk_create(
        Package(project=personal_project, name=f"pkg{n}") for n in range(PACKAGES)
    )
    now = timezone.now()
    builds = Build.objects.bulk_create(
        Build(
            project=personal_project,
            project_dirname=personal_project.name,
            package=packages[n % PACKAGES],
            package_name=packages[n % PACKAGES].name,
            package_version="1.0-1",
            submitter=alice,
            source_type="link",
            state=STATES[n % len(STATES)],
            submitted_on=now - timezone.timedelta(hours=n),
        )
        for n in range(BUILDS)
    )
    chroots = [chroot("fedora-43-x86_64"), chroot("fedora-43-aarch64")]
    BuildTask.objects.bulk_create(
        task
        for build in builds
        for task in [
            BuildTask(build=build, state=State.SUCCEEDED, priority=Priority.SOURCE),
            *(BuildTask(build=build, chroot=c, state=build.state) for c in chroots),
        ]
    )
    return personal_project


def list_pages(project) -> list[str]:
    names = (project.ownername, project.name)
    return [
        reverse("home"),
        reverse("project-list"),
        reverse("owner-projects", args=[project.ownername]),
        reverse("project-detail", args=names),
        reverse("build-list", args=names),
        reverse("build-list", args=names) + "?state=failed",
        reverse("build-list", args=names) + "?package=pkg3&page=2",
        reverse("build-list", args=names) + "?chroot=fedora-43-aarch64&state=running",
        reverse("package-list", args=names),
        reverse("package-detail", args=[*names, "pkg7"]),
        reverse("status"),
        reverse("user-detail", args=[project.owner_user.username]),
        reverse("search") + "?q=hello",
    ]


def test_list_pages_for_anonymous_users(client, busy_project, django_assert_max_num_queries):
    for url in list_pages(busy_project):
        with django_assert_max_num_queries(MAX_QUERIES):
            response = client.get(url)
        assert response.status_code == 200, url


def test_list_pages_for_the_owner(client, alice, busy_project, django_assert_max_num_queries):
    client.force_login(alice)
    for url in list_pages(busy_project):
        with django_assert_max_num_queries(MAX_QUERIES):
            response = client.get(url)
        assert response.status_code == 200, url


def test_build_page_of_a_build_with_many_chroots(
    client, alice, busy_project, django_assert_max_num_queries
):
    build = Build.objects.filter(project=busy_project).first()
    client.force_login(alice)
    with django_assert_max_num_queries(MAX_QUERIES):
        response = client.get(reverse("build-detail", args=[build.pk]))
    assert response.status_code == 200


def test_filters_pick_the_right_builds(client, busy_project):
    url = reverse("build-list", args=[busy_project.ownername, busy_project.name])
    page = client.get(url, {"state": "failed", "package": "pkg1"}).context["page"]
    assert page.paginator.count == Build.objects.filter(state="failed", package_name="pkg1").count()
    assert all(b["state"] == "failed" and b["package_name"] == "pkg1" for b in page)
    page = client.get(url, {"chroot": "fedora-43-aarch64"}).context["page"]
    # Counted only ten pages ahead of the first: all 1,000 builds match, more than that.
    assert page.paginator.open_ended and page.paginator.count == 11 * BUILDS_PER_PAGE
    page = client.get(url, {"chroot": "fedora-44-x86_64"}).context["page"]
    assert page.paginator.count == 0


def test_packages_show_their_newest_build(client, busy_project):
    url = reverse("package-list", args=[busy_project.ownername, busy_project.name])
    packages = {p.name: p for p in client.get(url).context["page"]}
    newest = Build.objects.filter(package_name="pkg3").order_by("-id").first()
    assert packages["pkg3"].latest_build_id == newest.pk
    assert packages["pkg3"].latest_build_state == newest.state


MANY_PACKAGES = 250


@pytest.fixture
def many_packages(personal_project, alice):
    """250 packages (three pages), 1 000 builds spread over them."""
    packages = Package.objects.bulk_create(
        Package(
            project=personal_project,
            name=f"many{n:03}",
            source_type="scm",
            source_json={"clone_url": f"https://example.org/many{n}.git", "type": "git"},
        )
        for n in range(MANY_PACKAGES)
    )
    Build.objects.bulk_create(
        Build(
            project=personal_project,
            project_dirname=personal_project.name,
            package=packages[n % MANY_PACKAGES],
            package_name=packages[n % MANY_PACKAGES].name,
            package_version=f"1.{n}-1",
            submitter=alice,
            source_type="scm",
            state=STATES[n % len(STATES)],
        )
        for n in range(BUILDS)
    )
    return personal_project


def test_package_pages_with_many_packages(
    client, alice, many_packages, django_assert_max_num_queries
):
    names = (many_packages.ownername, many_packages.name)
    public = [
        reverse("package-list", args=names),
        reverse("package-list", args=names) + "?page=3",
        reverse("package-detail", args=[*names, "many007"]),
    ]
    editing = [
        reverse("package-edit", args=[*names, "many007"]),
        reverse("package-edit-type", args=[*names, "many007", "pypi"]),
        reverse("package-new", args=names),
        reverse("package-delete", args=[*names, "many007"]),
        reverse("project-settings", args=names),
        reverse("project-integrations", args=names),
        reverse("project-fork", args=names),
    ]
    for url in public:
        with django_assert_max_num_queries(MAX_QUERIES):
            assert client.get(url).status_code == 200, url
    client.force_login(alice)
    for url in public + editing:
        with django_assert_max_num_queries(MAX_QUERIES):
            assert client.get(url).status_code == 200, url
    listed = client.get(public[0]).context["page"]
    assert len(listed) == PACKAGES_PER_PAGE
    assert listed.paginator.count == MANY_PACKAGES
    newest = Build.objects.filter(package_name="many007").order_by("-id").first()
    row = next(p for p in listed if p.name == "many007")
    assert (row.latest_build_id, row.latest_build_version) == (newest.pk, newest.package_version)
