"""Pages at Copr's URLs (monitor, repositories, status subpages, RSS, group lists), over HTTP
as a browser or a feed reader asks for them, each at a fixed number of queries."""

import xml.etree.ElementTree as ElementTree

import pytest
from django.utils import timezone

from apps.builds.models import Batch, Build, Priority, State
from apps.packages.models import Package
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, chroot
from tests.web.test_queries import MAX_QUERIES, busy_project  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db
X86, ARM = "fedora-43-x86_64", "fedora-43-aarch64"


def build_in(project, package, *, states: dict, version="1.0-1", **fields) -> Build:
    build = BuildFactory(
        project=project, package=package, package_name=package.name, package_version=version,
        **fields,
    )  # fmt: skip
    BuildTaskFactory(build=build, chroot=None, state=State.SUCCEEDED, priority=Priority.SOURCE)
    for name, state in states.items():
        BuildTaskFactory(build=build, chroot=chroot(name), state=state)
    return build


def test_monitor_shows_each_packages_newest_build_per_chroot(client, personal_project):
    hello = Package.objects.create(project=personal_project, name="hello")
    world = Package.objects.create(project=personal_project, name="world")
    build_in(personal_project, hello, states={X86: State.FAILED, ARM: State.FAILED})
    newest = build_in(personal_project, hello, states={X86: State.SUCCEEDED}, version="2.0-1")
    build_in(personal_project, world, states={ARM: State.RUNNING})

    response = client.get("/coprs/alice/hello/monitor/")
    assert response.status_code == 200
    rows = {row["name"]: row["cells"] for row in response.context["rows"]}
    assert [c.name for c in response.context["chroots"]] == [ARM, X86]
    # hello's newest build ran only in x86_64; aarch64 still shows the older failure.
    assert [(t["build_id"], t["state"]) for t in rows["hello"]][1] == (newest.pk, State.SUCCEEDED)
    assert rows["hello"][0]["state"] == State.FAILED
    assert rows["world"][0]["state"] == State.RUNNING and rows["world"][1] is None
    text = response.content.decode()
    assert '<a href="/coprs/alice/hello/package/hello/">hello</a>' in text
    assert (
        f'<a href="/builds/{newest.pk}/"><span class="state state-succeeded" '
        f'title="build {newest.pk}: succeeded">succeeded</span></a>'
    ) in text
    assert b"2.0-1" not in response.content  # the simple variant shows states only

    detailed = client.get("/coprs/alice/hello/monitor/detailed/")
    assert b"2.0-1" in detailed.content and str(newest.pk).encode() in detailed.content
    assert client.get("/coprs/alice/hello/monitor/simple/").status_code == 200
    assert client.get("/coprs/alice/hello/monitor/fancy/").status_code == 404
    assert client.get("/coprs/alice/nothing/monitor/").status_code == 404


def test_monitor_of_a_group_project(client, group_project):
    response = client.get("/coprs/g/packagers/tools/monitor/")
    assert response.status_code == 200 and b"No packages yet." in response.content


def test_repositories_page_lists_each_chroots_repository(client, personal_project):
    response = client.get("/coprs/alice/hello/repositories/")
    assert response.status_code == 200
    text = response.content.decode()
    assert f"/results/alice/hello/{X86}/" in text and f"/results/alice/hello/{ARM}/" in text
    assert "fedora-43.repo" in text
    assert '<a href="/coprs/alice/hello/repositories/" class="active">' in text


def test_repositories_page_enables_the_project_from_this_service_as_the_overview_does(
    client, personal_project, settings
):
    settings.PUBLIC_URL = "https://copr.example.org"
    command = "dnf copr enable copr.example.org/alice/hello"
    for page in ("/coprs/alice/hello/", "/coprs/alice/hello/repositories/"):
        text = client.get(page).content.decode()
        assert f'<pre id="enable-command">{command}</pre>' in text, page
        # `dnf copr enable alice/hello` alone would go to Fedora's Copr.
        assert "<code>dnf copr enable alice/hello</code>" not in text, page
        assert (
            '<pre id="hub-config-command">curl -o /etc/dnf/plugins/copr.d/copr.example.org.conf'
            " https://copr.example.org/dnf/copr-hub.conf</pre>"
        ) in text, page


def test_status_subpages(client, personal_project):
    package = Package.objects.create(project=personal_project, name="hello")
    pending = build_in(personal_project, package, states={X86: State.PENDING})
    background = build_in(
        personal_project, package, states={X86: State.PENDING}, is_background=True
    )
    running = build_in(personal_project, package, states={ARM: State.RUNNING})
    starting = build_in(personal_project, package, states={ARM: State.STARTING})
    importing = BuildFactory(project=personal_project, state=State.IMPORTING)
    BuildTaskFactory(build=importing, chroot=None, state=State.RUNNING, priority=Priority.SOURCE)

    def listed(url):
        response = client.get(url)
        assert response.status_code == 200, url
        assert b'<header class="top">' in response.content  # the site's layout
        return {task["build_id"] for task in response.context["page"]}

    assert listed("/status/pending/") == {pending.pk}
    assert client.get("/status/pending/").context["background_count"] == 1
    assert listed("/status/running/") == {running.pk, importing.pk}
    assert listed("/status/starting/") == {starting.pk}
    assert listed("/status/importing/") == {importing.pk}

    rows = client.get("/status/pending/all/").context["rows"]
    assert {(r["owner"], r["chroot"], r["background"], r["count"]) for r in rows} == {
        ("alice", X86, False, 1),
        ("alice", X86, True, 1),
    }
    assert background.pk  # counted above, listed on no page of its own


def test_status_batches_and_stats(client, personal_project):
    package = Package.objects.create(project=personal_project, name="hello")
    first, second = Batch.objects.create(), Batch.objects.create()
    second.blocked_by = first
    second.save()
    build_in(personal_project, package, states={X86: State.RUNNING}, batch=first, state="running")
    build_in(personal_project, package, states={X86: State.WAITING}, batch=second, state="pending")
    finished = Batch.objects.create()
    build_in(personal_project, package, states={X86: State.SUCCEEDED}, batch=finished)

    batches = client.get("/status/batches/").context["batches"]
    assert [(row["batch"].pk, row["state"]) for row in batches] == [
        (first.pk, "processing"),
        (second.pk, "blocked"),
    ]
    stats = client.get("/status/stats/")
    assert stats.status_code == 200
    assert stats.context["submitters"] == 1
    assert {row["chroot__name"]: row["count"] for row in stats.context["per_chroot"]} == {X86: 3}


def feed_items(response) -> list:
    feed = ElementTree.fromstring(response.content)  # noqa: S314 (our own server's answer)
    return feed.find("channel").findall("item")


def test_rss_lists_new_listed_projects(client, personal_project, alice):
    ProjectFactory(owner_user=alice, name="hidden", unlisted_on_hp=True)
    ProjectFactory(owner_user=alice, name="temporary", delete_after=timezone.now())
    newest = ProjectFactory(owner_user=alice, name="newest", description="A <b>new</b> one")

    response = client.get("/rss/")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    items = feed_items(response)
    assert [item.findtext("title") for item in items] == ["alice/newest", "alice/hello"]
    assert items[0].findtext("description") == newest.description
    assert items[0].findtext("link").endswith("/coprs/alice/newest/")
    assert len(feed_items(client.get("/rss/1/"))) == 1
    assert len(feed_items(client.get("/rss/all/"))) == 4


def test_group_projects_at_coprs_url(client, group_project):
    response = client.get("/groups/g/packagers/coprs/")
    assert response.status_code == 200
    assert b"@packagers/tools" in response.content
    assert client.get("/groups/g/nobody/coprs/").status_code == 404


@pytest.mark.usefixtures("busy_project", "group_project")
def test_copr_pages_cost_a_fixed_number_of_queries(client, alice, django_assert_max_num_queries):
    # 1 000 builds in 20 packages; a fifth of them queued, some in batches, many projects.
    batch = Batch.objects.create()
    Build.objects.filter(pk__in=list(Build.objects.values_list("pk", flat=True)[:50])).update(
        batch=batch
    )
    for n in range(30):
        ProjectFactory(owner_user=alice, name=f"more{n}")
    pages = [
        "/coprs/alice/hello/monitor/",
        "/coprs/alice/hello/monitor/detailed/",
        "/coprs/alice/hello/repositories/",
        "/status/pending/",
        "/status/pending/all/",
        "/status/starting/",
        "/status/running/",
        "/status/importing/",
        "/status/batches/",
        "/status/stats/",
        "/rss/",
        "/groups/g/packagers/coprs/",
    ]
    for url in pages:
        with django_assert_max_num_queries(MAX_QUERIES):
            response = client.get(url)
        assert response.status_code == 200, url
    assert len(client.get("/coprs/alice/hello/monitor/").context["rows"]) == 20
    assert len(client.get("/status/pending/").context["page"]) == 100
