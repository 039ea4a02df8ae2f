"""Tests for the build endpoints of apps/api/v1: submit by URL and upload, cancel, delete."""

import datetime
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.builds.models import Build, BuildTask, State
from apps.projects.models import PermissionLevel
from tests.api.v1.conftest import planner_estimate_queries
from tests.builders.helpers import free_port
from tests.factories import BuildFactory, GroupFactory, PermissionFactory, ProjectFactory

pytestmark = pytest.mark.django_db

BUILDS = "/api/v1/projects/alice/hello/builds"
BUILD_FIELDS = {
    "id",
    "state",
    "submitted_on",
    "started_on",
    "ended_on",
    "source_type",
    "source_metadata",
    "package_name",
    "package_version",
    "enable_net",
    "repos",
    "built_packages",
    "submitter",
    "links",
}


@pytest.fixture
def no_url_probe(settings):
    settings.SUBMIT_CHECK_URLS = False


@pytest.fixture
def served_srpm(web_server, package_files) -> str:
    """The URL of a real SRPM on the local web server."""
    srpm = package_files["srpm"]
    shutil.copy(srpm, web_server.directory / srpm.name)
    return web_server.url(srpm.name)


def upload(name: str, content: bytes) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/x-rpm")


def srpm_upload(package_files) -> SimpleUploadedFile:
    srpm = package_files["srpm"]
    return upload(srpm.name, srpm.read_bytes())


def stored_uploads() -> list[Path]:
    return [path for path in Path(settings.UPLOADS_ROOT).rglob("*") if path.is_file()]


def assert_nothing_submitted() -> None:
    assert Build.objects.count() == 0 and BuildTask.objects.count() == 0
    assert stored_uploads() == []


# --- submit from a URL --------------------------------------------------------------------


def test_submit_from_a_url_probes_it_and_records_the_build(
    client_for, alice, hello_project, served_srpm, web_server
):
    response = client_for(alice).post(
        BUILDS, {"source_url": served_srpm, "chroots": ["fedora-43-x86_64"]}, format="json"
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == BUILD_FIELDS
    assert body["state"] == "pending"
    assert body["source_type"] == "link"
    assert body["source_metadata"] == {"url": served_srpm}
    assert body["submitter"] == "alice"
    assert body["package_name"] is None and body["package_version"] is None
    assert body["started_on"] is None and body["ended_on"] is None
    assert isinstance(body["submitted_on"], int)
    assert body["links"] == {
        "self": f"http://testserver/api/v1/builds/{body['id']}",
        "project": "http://testserver/api/v1/projects/alice/hello",
        "tasks": f"http://testserver/api/v1/builds/{body['id']}/tasks",
    }
    assert response["Location"] == body["links"]["self"]
    build = Build.objects.get(pk=body["id"])
    assert build.requested_chroots == ["fedora-43-x86_64"]
    assert build.tasks.get().state == State.PENDING
    assert web_server.requests == [f"/{Path(served_srpm).name}"]


def test_submit_options_reach_the_build(client_for, alice, hello_project, no_url_probe):
    response = client_for(alice).post(
        BUILDS,
        {
            "source_url": "https://example.org/hello-1.0-1.src.rpm",
            "chroots": ["fedora-*"],
            "exclude_chroots": ["fedora-44-*"],
            "enable_net": True,
            "timeout": 600,
            "background": True,
        },
        format="json",
    )

    assert response.status_code == 201, response.json()
    build = Build.objects.get()
    assert build.requested_chroots == ["fedora-43-x86_64"]
    assert (build.enable_net, build.timeout, build.is_background) == (True, 600, True)


def test_url_that_answers_404_is_rejected(client_for, alice, hello_project, web_server, settings):
    settings.ALLOW_PRIVATE_URLS = True  # the test's server listens on 127.0.0.1
    url = web_server.url("missing-1.0-1.src.rpm")

    response = client_for(alice).post(BUILDS, {"source_url": url}, format="json")

    assert response.status_code == 400
    message = f"Cannot download the source URL {url}: HTTP 404."
    assert response.json() == {
        "error": f"source_url: {message}",
        "fields": {"source_url": [message]},
    }
    assert_nothing_submitted()


def test_url_nobody_listens_on_is_rejected(client_for, alice, hello_project, settings):
    settings.ALLOW_PRIVATE_URLS = True
    url = f"http://127.0.0.1:{free_port()}/hello-1.0-1.src.rpm"

    response = client_for(alice).post(BUILDS, {"source_url": url}, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == f"source_url: Cannot reach the source URL {url}."
    assert_nothing_submitted()


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("ftp://example.org/x.src.rpm", "must be an http:// or https:// URL"),
        ("https://example.org/x.tar.gz", "must point to a .src.rpm or .spec file"),
        ("not a url", "must be an http:// or https:// URL"),
    ],
)
def test_url_that_is_not_an_srpm_link_is_rejected(client_for, alice, hello_project, url, error):
    response = client_for(alice).post(BUILDS, {"source_url": url}, format="json")

    assert response.status_code == 400
    assert error in response.json()["error"]
    assert_nothing_submitted()


# --- submit an upload ---------------------------------------------------------------------


def test_submit_an_uploaded_srpm(client_for, alice, hello_project, package_files):
    srpm = package_files["srpm"]

    response = client_for(alice).post(
        BUILDS,
        {"srpm": srpm_upload(package_files), "chroots": "fedora-43-x86_64,fedora-44-x86_64"},
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    body = response.json()
    assert set(body) == BUILD_FIELDS
    assert body["source_type"] == "upload"
    assert body["source_metadata"] == {"pkg": srpm.name, "tmp": f"{body['id']:08d}"}
    build = Build.objects.get()
    assert build.requested_chroots == ["fedora-43-x86_64", "fedora-44-x86_64"]
    (stored,) = stored_uploads()
    assert stored.name == srpm.name and stored.read_bytes() == srpm.read_bytes()


def test_upload_over_the_users_budget_is_refused(
    client_for, alice, hello_project, package_files, settings
):
    settings.UPLOADS_USER_BUDGET_BYTES = package_files["srpm"].stat().st_size * 3 // 2
    client = client_for(alice)
    first = client.post(BUILDS, {"srpm": srpm_upload(package_files)}, format="multipart")
    assert first.status_code == 201, first.json()

    refused = client.post(BUILDS, {"srpm": srpm_upload(package_files)}, format="multipart")

    assert refused.status_code == 413
    assert "wait for their source task already take" in refused.json()["error"]
    assert Build.objects.count() == 1 and len(stored_uploads()) == 1


def test_upload_with_repeated_chroot_fields(client_for, alice, hello_project, package_files):
    response = client_for(alice).post(
        BUILDS,
        {"srpm": srpm_upload(package_files), "chroots": ["fedora-44-x86_64", "fedora-43-x86_64"]},
        format="multipart",
    )

    assert response.status_code == 201, response.json()
    assert Build.objects.get().requested_chroots == ["fedora-44-x86_64", "fedora-43-x86_64"]


def test_upload_without_enable_net_uses_the_project_setting(
    client_for, alice, package_files, hello_project
):
    hello_project.enable_net = True
    hello_project.save()

    response = client_for(alice).post(
        BUILDS, {"srpm": srpm_upload(package_files)}, format="multipart"
    )

    assert response.status_code == 201
    assert response.json()["enable_net"] is True


def truncated_srpm(files) -> tuple[str, bytes]:
    srpm = files["srpm"]
    return srpm.name, srpm.read_bytes()[: srpm.stat().st_size // 2]


@pytest.mark.parametrize(
    ("make_file", "error"),
    [
        (
            lambda files: ("notes.txt", b"hello"),
            "'notes.txt' is neither a source RPM nor a spec file",
        ),
        (lambda files: ("fake.src.rpm", b"hello" * 100), "'fake.src.rpm' is not a usable source"),
        (
            lambda files: ("hello.src.rpm", files["rpm"].read_bytes()),
            "'hello.src.rpm' is not a usable source RPM",
        ),
        (
            lambda files: (files["rpm"].name, files["rpm"].read_bytes()),
            "is neither a source RPM nor a spec file",
        ),
        (truncated_srpm, "is not a usable source RPM"),
        (lambda files: ("empty.src.rpm", b""), "srpm: The submitted file is empty."),
    ],
    ids=["text", "garbage", "binary-rpm-renamed", "binary-rpm", "truncated", "empty"],
)
def test_bad_upload_is_rejected_and_nothing_is_kept(
    client_for, alice, hello_project, package_files, make_file, error
):
    name, content = make_file(package_files)

    response = client_for(alice).post(BUILDS, {"srpm": upload(name, content)}, format="multipart")

    assert response.status_code == 400
    assert error in response.json()["error"]
    assert_nothing_submitted()


def test_srpm_field_that_is_not_a_file(client_for, alice, hello_project):
    response = client_for(alice).post(BUILDS, {"srpm": "hello.src.rpm"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"].startswith("srpm: The submitted data was not a file.")
    assert_nothing_submitted()


# --- submit: what is wrong with the request -----------------------------------------------

ONE_SOURCE = (
    "Give exactly one source: source_url (a link to a .src.rpm) "
    "or srpm (the file, in a multipart upload)."
)


def test_neither_source_is_400(client_for, alice, hello_project):
    response = client_for(alice).post(BUILDS, {"chroots": ["fedora-43-x86_64"]}, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == ONE_SOURCE
    assert_nothing_submitted()


def test_both_sources_are_400(client_for, alice, hello_project, package_files, no_url_probe):
    response = client_for(alice).post(
        BUILDS,
        {"srpm": srpm_upload(package_files), "source_url": "https://example.org/x.src.rpm"},
        format="multipart",
    )

    assert response.status_code == 400
    assert response.json()["error"] == ONE_SOURCE
    assert_nothing_submitted()


@pytest.mark.parametrize(
    ("options", "error"),
    [
        (
            {"chroots": ["fedora-99-x86_64"]},
            "chroots: 'fedora-99-x86_64' is not a valid choice for this field "
            "(chroots enabled in alice/hello: fedora-43-x86_64, fedora-44-x86_64)",
        ),
        (
            {"chroots": ["epel-9-x86_64"]},
            "chroots: 'epel-9-x86_64' is not a valid choice for this field "
            "(chroots enabled in alice/hello: fedora-43-x86_64, fedora-44-x86_64)",
        ),
        (
            {"exclude_chroots": ["*"]},
            "chroots: No chroot to build in: the project alice/hello has no active chroot "
            "matching the request. Enable a chroot in the project settings first.",
        ),
        ({"timeout": 0}, "timeout: timeout must be between 1 and 108000 seconds, not 0."),
        ({"timeout": "soon"}, "timeout: A valid integer is required."),
        ({"chroots": ["x", {}]}, "chroots: Expected a list of texts; item 1 is an object."),
        # Not taken as a chroot named "1".
        ({"chroots": [1]}, "chroots: Expected a list of texts; item 0 is a number."),
        ({"enable_net": "perhaps"}, "enable_net: Must be a valid boolean."),
        ({"memory": 4096}, "memory: Unknown or read-only field."),
    ],
)
def test_invalid_options_are_400(client_for, alice, hello_project, no_url_probe, options, error):
    body = {"source_url": "https://example.org/hello-1.0-1.src.rpm", **options}

    response = client_for(alice).post(BUILDS, body, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == error
    assert_nothing_submitted()


def test_submit_to_a_missing_project_is_404(client_for, alice, no_url_probe):
    response = client_for(alice).post(
        "/api/v1/projects/alice/nope/builds",
        {"source_url": "https://example.org/x.src.rpm"},
        format="json",
    )

    assert response.status_code == 404
    assert response.json() == {"error": "Project alice/nope does not exist."}


def test_user_without_permission_gets_403(client_for, bob, hello_project, no_url_probe):
    response = client_for(bob).post(
        BUILDS, {"source_url": "https://example.org/x.src.rpm"}, format="json"
    )

    assert response.status_code == 403
    assert response.json() == {
        "error": "User 'bob' is not allowed to build in the project alice/hello."
    }
    assert_nothing_submitted()


def test_anonymous_submit_is_401(client_for, hello_project, no_url_probe):
    response = client_for().post(
        BUILDS, {"source_url": "https://example.org/x.src.rpm"}, format="json"
    )

    assert response.status_code == 401
    assert_nothing_submitted()


def test_approved_builder_and_group_member_may_submit(client_for, bob, hello_project, no_url_probe):
    PermissionFactory(project=hello_project, user=bob, builder=PermissionLevel.APPROVED)
    group = GroupFactory(name="devs")
    group.members.add(bob)
    ProjectFactory(name="tools", owner_user=None, owner_group=group)
    source = {"source_url": "https://example.org/x.src.rpm"}

    as_builder = client_for(bob).post(BUILDS, source, format="json")
    as_member = client_for(bob).post("/api/v1/projects/@devs/tools/builds", source, format="json")

    assert (as_builder.status_code, as_member.status_code) == (201, 201)
    assert as_member.json()["links"]["project"].endswith("/api/v1/projects/@devs/tools")


# --- reading builds -----------------------------------------------------------------------


def test_build_shape_renders_times_as_unix_and_packages(client_for, hello_project):
    moment = datetime.datetime(2025, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    build = BuildFactory(
        project=hello_project,
        submitter=None,
        submitted_on=moment,
        started_on=moment + datetime.timedelta(seconds=10),
        ended_on=moment + datetime.timedelta(seconds=70),
        built_packages=[{"name": "hello", "version": "1.0"}],
        repos=["https://example.org/extra/"],
    )

    body = client_for().get(f"/api/v1/builds/{build.pk}").json()

    assert set(body) == BUILD_FIELDS
    assert body["submitted_on"] == 1735787045
    assert (body["started_on"], body["ended_on"]) == (1735787055, 1735787115)
    assert body["built_packages"] == [{"name": "hello", "version": "1.0"}]
    assert body["submitter"] is None
    assert (body["package_name"], body["package_version"]) == ("hello", "1.0-1")
    assert body["repos"] == ["https://example.org/extra/"]
    assert body["state"] == "succeeded"


def test_unknown_build_is_404(client_for, db):
    response = client_for().get("/api/v1/builds/424242")

    assert response.status_code == 404
    assert response.json() == {"error": "Build 424242 does not exist."}


def test_lists_are_newest_first_and_per_project(client_for, alice, hello_project):
    other = ProjectFactory(name="other", owner_user=alice)
    first, second = BuildFactory(project=hello_project), BuildFactory(project=other)
    third = BuildFactory(project=hello_project)

    everything = client_for().get("/api/v1/builds").json()
    per_project = client_for().get(BUILDS).json()
    page = client_for().get("/api/v1/builds", {"limit": 1, "offset": 1}).json()

    assert [b["id"] for b in everything["results"]] == [third.pk, second.pk, first.pk]
    assert [b["id"] for b in per_project["results"]] == [third.pk, first.pk]
    assert [b["id"] for b in page["results"]] == [second.pk] and page["count"] == 3


def test_build_lists_need_a_fixed_number_of_queries(
    client_for, alice, bob, hello_project, django_assert_max_num_queries
):
    group_project = ProjectFactory(name="tools", owner_user=None, owner_group=GroupFactory())
    for submitter, project in [(alice, hello_project), (bob, group_project), (None, hello_project)]:
        BuildFactory.create_batch(3, project=project, submitter=submitter)
    client = client_for()

    # count, page's ids, page; on PostgreSQL the planner's estimate of the whole table first
    with django_assert_max_num_queries(3 + planner_estimate_queries()):
        everything = client.get("/api/v1/builds")
    with django_assert_max_num_queries(4):  # project, count, page's ids, page
        per_project = client.get(BUILDS)

    assert len(everything.json()["results"]) == 9
    assert len(per_project.json()["results"]) == 6


def test_builds_of_a_missing_project_is_404(client_for, db):
    response = client_for().get("/api/v1/projects/alice/nope/builds")

    assert response.status_code == 404
    assert response.json() == {"error": "Project alice/nope does not exist."}


# --- cancel and delete --------------------------------------------------------------------


@pytest.fixture
def pending_build(client_for, alice, hello_project, no_url_probe) -> Build:
    response = client_for(alice).post(
        BUILDS, {"source_url": "https://example.org/hello-1.0-1.src.rpm"}, format="json"
    )
    return Build.objects.get(pk=response.json()["id"])


def test_owner_cancels_a_pending_build(client_for, alice, pending_build):
    response = client_for(alice).patch(
        f"/api/v1/builds/{pending_build.pk}", {"state": "canceled"}, format="json"
    )

    assert response.status_code == 200, response.json()
    assert response.json()["state"] == "canceled"
    pending_build.refresh_from_db()
    assert pending_build.state == State.CANCELED
    assert set(pending_build.tasks.values_list("state", flat=True)) == {State.CANCELED}


def test_cancel_of_a_finished_build_is_409(client_for, alice, hello_project):
    build = BuildFactory(project=hello_project, state=State.SUCCEEDED)

    response = client_for(alice).patch(
        f"/api/v1/builds/{build.pk}", {"state": "canceled"}, format="json"
    )

    assert response.status_code == 409
    assert response.json() == {
        "error": f"Cannot cancel build {build.pk}: it has already succeeded."
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"state": "running"}, "state"),
        ({"state": "canceled", "enable_net": True}, "enable_net"),
        ({"package_name": "x"}, "package_name"),
        ({}, "state"),
    ],
)
def test_patch_changes_only_the_state_to_canceled(client_for, alice, pending_build, body, field):
    response = client_for(alice).patch(f"/api/v1/builds/{pending_build.pk}", body, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == f"{field}: Only state may be changed, and only to canceled."
    pending_build.refresh_from_db()
    assert pending_build.state == State.PENDING and pending_build.enable_net is False


def test_others_cannot_cancel(client_for, bob, pending_build):
    url = f"/api/v1/builds/{pending_build.pk}"

    by_bob = client_for(bob).patch(url, {"state": "canceled"}, format="json")
    by_anonymous = client_for().patch(url, {"state": "canceled"}, format="json")

    assert (by_bob.status_code, by_anonymous.status_code) == (403, 401)
    assert by_bob.json() == {"error": f"You are not allowed to cancel build {pending_build.pk}."}
    pending_build.refresh_from_db()
    assert pending_build.state == State.PENDING


def test_owner_deletes_a_finished_build(client_for, alice, hello_project):
    build = BuildFactory(project=hello_project, state=State.FAILED)

    response = client_for(alice).delete(f"/api/v1/builds/{build.pk}")

    assert response.status_code == 204
    assert not Build.objects.filter(pk=build.pk).exists()


def test_delete_of_an_unfinished_build_is_409(client_for, alice, pending_build):
    response = client_for(alice).delete(f"/api/v1/builds/{pending_build.pk}")

    assert response.status_code == 409
    assert response.json() == {
        "error": f"Build {pending_build.pk} is still pending; cancel it first."
    }
    assert Build.objects.filter(pk=pending_build.pk).exists()


def test_others_cannot_delete(client_for, bob, hello_project):
    build = BuildFactory(project=hello_project, state=State.SUCCEEDED)
    url = f"/api/v1/builds/{build.pk}"

    by_bob = client_for(bob).delete(url)
    by_anonymous = client_for().delete(url)

    assert (by_bob.status_code, by_anonymous.status_code) == (403, 401)
    assert Build.objects.filter(pk=build.pk).exists()


def test_delete_of_an_unknown_build_is_404(client_for, alice):
    response = client_for(alice).delete("/api/v1/builds/424242")

    assert response.status_code == 404
    assert response.json() == {"error": "Build 424242 does not exist."}
