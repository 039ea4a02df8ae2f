"""/api_3 against hostile and malformed input (issue 10, items 1 and 6): a 4xx with a message
a person can act on, never a 500 and never a stored value of the wrong type."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.builds.models import Build
from apps.projects.models import Project
from tests.factories import BuildFactory, ProjectFactory, UserFactory
from tests.queues import run_outbox_messages

pytestmark = pytest.mark.django_db
X86 = "fedora-43-x86_64"


# --- item 1: a project named `..` ----------------------------------------------------------


@pytest.mark.parametrize("name", ["..", ".", "a/b", "../bob", "12345", "проект", "a b"])
def test_names_that_are_not_directory_names_are_refused(copr_client, alice, name):
    response = copr_client(alice).post("project/add/alice", {"name": name, "chroots": [X86]})
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith("name: ")
    assert not Project.objects.exists()


def test_deleting_a_project_named_dotdot_leaves_other_users_files(copr_client, alice, settings):
    """Even a row that predates the name rules cannot make delete leave the project's tree."""
    results = settings.RESULTS_ROOT
    others = results / "bob" / "tools" / X86
    others.mkdir(parents=True)
    (others / "repomd.xml").write_text("bob's repository")
    own = results / "alice" / "fine" / X86
    own.mkdir(parents=True)
    hostile = ProjectFactory(owner_user=alice, name="..", chroot_names=[X86])
    ProjectFactory(owner_user=alice, name="fine", chroot_names=[X86])

    response = copr_client(alice).post("project/delete/alice/..", {"verify": True})

    assert response.status_code == 200, response.content
    assert not Project.objects.filter(pk=hostile.pk).exists()
    assert run_outbox_messages("remove_project_results") == 1  # the backend's removal
    assert (others / "repomd.xml").read_text() == "bob's repository"
    assert own.is_dir()  # alice's other project is outside `alice/..` too: untouched


def test_deleting_a_project_removes_its_own_directories(copr_client, alice, settings):
    project = ProjectFactory(owner_user=alice, name="tools", chroot_names=[X86])
    BuildFactory(project=project, project_dirname="tools:custom:ci")
    main = settings.RESULTS_ROOT / "alice" / "tools" / X86
    custom = settings.RESULTS_ROOT / "alice" / "tools:custom:ci" / X86
    sibling = settings.RESULTS_ROOT / "alice" / "tools2" / X86
    for directory in (main, custom, sibling):
        directory.mkdir(parents=True)
    response = copr_client(alice).post("project/delete/alice/tools", {"verify": True})
    assert response.status_code == 200
    assert main.exists()  # the results are the backend's: it removes them
    assert run_outbox_messages("remove_project_results") == 1
    assert not main.exists() and not custom.exists()
    assert sibling.is_dir()
    assert not Project.objects.filter(pk=project.pk).exists()


# --- item 6: each input gets a 4xx ----------------------------------------------------------


def test_ownername_as_a_list_in_the_upload_json_part(copr_client, alice, hello_project):
    response = copr_client(alice).client.post(
        "/api_3/build/create/upload",
        {
            "pkgs": SimpleUploadedFile("hello.src.rpm", b"not really"),
            "json": SimpleUploadedFile(
                "json", json.dumps({"ownername": ["alice"], "projectname": "hello"}).encode()
            ),
        },
        headers=copr_client(alice).headers,
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "ownername: Expected text, got a list."
    assert not Build.objects.exists()


@pytest.mark.parametrize("parameter", ["offset", "limit"])
def test_offset_and_limit_beyond_bigint(copr_client, alice, hello_project, parameter):
    params = {"ownername": "alice", "projectname": "hello", parameter: "1180591620717411303424"}
    for path in ("build/list", "project/list", "package/list"):
        response = copr_client().get(path, params)
        assert response.status_code == 400, (path, response.content)
        assert (
            f"{parameter}: 1180591620717411303424 must be between 0 and"
            in (response.json()["error"])
        )


def test_v1_offset_and_ids_beyond_bigint(api_client, hello_project):
    for path in ("/api/v1/projects", "/api/v1/builds", "/api/v1/projects/alice/hello/builds"):
        response = api_client.get(path, {"offset": "1180591620717411303424"})
        assert response.status_code == 400, (path, response.content)
        assert "offset" in response.json()["fields"]
    response = api_client.get("/api/v1/builds/1180591620717411303424")
    assert response.status_code == 404, response.content


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"name": "bad\x00name", "chroots": [X86]}, "name"),
        ({"name": "ok", "chroots": [X86], "description": "a\x00b"}, "description"),
        ({"name": "ok", "chroots": [X86], "additional_repos": ["https://e.org/\x00"]}, None),
    ],
)
def test_nul_bytes_anywhere_are_refused(copr_client, alice, data, field):
    response = copr_client(alice).post("project/add/alice", data)
    assert response.status_code == 400, response.content
    assert "NUL characters are not allowed." in response.json()["error"]
    if field:
        assert f"{field}: NUL" in response.json()["error"]
    assert not Project.objects.exists()


def test_nul_byte_in_a_path_name(copr_client):
    response = copr_client().get("project", {"ownername": "alice", "projectname": "x\x00y"})
    assert response.status_code == 400
    assert response.json()["error"] == "projectname: NUL characters are not allowed."


def test_dict_description_is_refused_not_stored_as_its_repr(copr_client, alice, hello_project):
    response = copr_client(alice).post("project/edit/alice/hello", {"description": {"text": "hi"}})
    assert response.status_code == 400
    assert response.json()["error"] == "description: Expected text, got an object."
    hello_project.refresh_from_db()
    assert hello_project.description == ""


@pytest.mark.parametrize("value", [{"on": True}, "maybe", [True], 2])
def test_enable_net_must_be_a_boolean(copr_client, alice, hello_project, value):
    response = copr_client(alice).post("project/edit/alice/hello", {"enable_net": value})
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith("enable_net: Expected a boolean")
    hello_project.refresh_from_db()
    assert hello_project.enable_net is False
    build = copr_client(alice).post(
        "build/create/scm",
        {"ownername": "alice", "projectname": "hello", "clone_url": "https://e.org/x.git",
         "enable_net": value},
    )  # fmt: skip
    assert build.status_code == 400
    assert "enable_net: Expected a boolean" in build.json()["error"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, True), ("true", True), ("on", True), ("y", True), ("1", True),
     (False, False), ("false", False), ("", False), ("off", False), ("n", False)],
)  # fmt: skip
def test_booleans_copr_clients_send_are_accepted(
    copr_client, alice, hello_project, value, expected
):
    response = copr_client(alice).post("project/edit/alice/hello", {"enable_net": value})
    assert response.status_code == 200, response.content
    assert response.json()["enable_net"] is expected


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc",
        "http://127.0.0.1:5432/",
        "http://localhost:6379/",
        "http://10.1.2.3/repo/",
        "http://169.254.169.254/latest/",
        "http://[::1]/repo/",
        "http://[::ffff:127.0.0.1]/repo/",
        "ftp://example.org/repo/",
    ],
)
def test_additional_repos_only_public_http_and_copr(copr_client, alice, hello_project, url):
    response = copr_client(alice).post("project/edit/alice/hello", {"additional_repos": [url]})
    assert response.status_code == 400, response.content
    assert response.json()["error"].startswith(f"additional_repos: '{url}'")
    hello_project.refresh_from_db()
    assert hello_project.additional_repos == []


def test_private_repos_are_allowed_when_the_operator_says_so(
    copr_client, alice, hello_project, settings
):
    settings.ALLOW_PRIVATE_URLS = True
    repos = ["http://127.0.0.1:8080/repo/", "copr://bob/tools", "https://example.org/r/"]
    response = copr_client(alice).post("project/edit/alice/hello", {"additional_repos": repos})
    assert response.status_code == 200, response.content
    assert response.json()["additional_repos"] == repos


def test_chroot_repos_are_checked_too(copr_client, alice, hello_project):
    response = copr_client(alice).post(
        f"project-chroot/edit/alice/hello/{X86}", {"additional_repos": ["file:///etc"]}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("additional_repos: 'file:///etc'")


# --- every failing field at once, in Copr's shape and messages -----------------------------


def test_project_add_reports_every_field(copr_client, alice, hello_project):
    response = copr_client(alice).post(
        "project/add/alice",
        {"name": "hello", "chroots": ["nope-1-x86_64", X86], "isolation": "weird",
         "repo_priority": 0, "homepage": "not a url"},
    )  # fmt: skip
    assert response.status_code == 400
    lines = response.json()["error"].split("\n")
    assert set(lines) == {
        "chroots: 'nope-1-x86_64' is not a valid choice for this field",
        "name: You already have a project named 'hello'.",
        "isolation: 'weird' is not a valid choice for this field",
        "repo_priority: 0 must be between 1 and 9223372036854775807.",
        "homepage: Enter a valid URL.",
    }
    assert Project.objects.count() == 1


def test_project_edit_reports_every_field(copr_client, alice, hello_project):
    response = copr_client(alice).post(
        "project/edit/alice/hello",
        {"chroots": ["nope-1-x86_64"], "bootstrap": "sometimes", "contact": "x" * 300},
    )
    assert response.status_code == 400
    assert set(response.json()["error"].split("\n")) == {
        "chroots: 'nope-1-x86_64' is not a valid choice for this field",
        "bootstrap: 'sometimes' is not a valid choice for this field",
        "contact: Ensure this value has at most 200 characters (it has 300).",
    }


def test_project_fork_reports_every_field(copr_client, alice, hello_project):
    response = copr_client(alice).post(
        "project/fork/alice/hello", {"name": "..", "ownername": "nobody", "confirm": "maybe"}
    )
    assert response.status_code == 400
    assert set(response.json()["error"].split("\n")) == {
        "name: '..' is not a valid project name.",
        "confirm: Expected a boolean (true or false), got 'maybe'.",
    }
    # A name that is not even text is refused before anything else is read.
    response = copr_client(alice).post(
        "project/fork/alice/hello", {"name": "..", "ownername": ["x"], "confirm": "maybe"}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "ownername: Expected text, got a list."
    assert Project.objects.count() == 1


def test_build_create_reports_every_field(copr_client, alice, hello_project):
    response = copr_client(alice).post(
        "build/create/scm",
        {"ownername": "alice", "projectname": "hello", "clone_url": "not a url",
         "chroots": ["fedora-1-x86_64"], "timeout": "long", "project_dirname": "other:dir"},
    )  # fmt: skip
    assert response.status_code == 400
    lines = response.json()["error"].split("\n")
    assert lines[0].startswith("timeout: 'long' is not a whole number.")
    assert {line.split(":")[0] for line in lines} == {
        "timeout", "chroots", "project_dirname", "clone_url",
    }  # fmt: skip
    assert "project_dirname: Please use directory format hello:custom:" in "\n".join(lines)
    assert not Build.objects.exists()


def test_build_dirname_must_be_a_directory_of_the_project(copr_client, alice, hello_project):
    for dirname in ("hello:custom:../../x", "hello:custom:", "bob", "hello:pr:abc"):
        response = copr_client(alice).post(
            "build/create/scm",
            {"ownername": "alice", "projectname": "hello", "clone_url": "https://e.org/x.git",
             "project_dirname": dirname},
        )  # fmt: skip
        assert response.status_code == 400, dirname
        assert response.json()["error"].startswith(
            "project_dirname: Please use directory format hello:custom:<SUFFIX_WITHOUT_SPACES>"
        )
    ok = copr_client(alice).post(
        "build/create/scm",
        {"ownername": "alice", "projectname": "hello", "clone_url": "https://e.org/x.git",
         "project_dirname": "hello:custom:ci-1"},
    )  # fmt: skip
    assert ok.status_code == 200, ok.content


def test_package_add_reports_every_field(copr_client, alice, hello_project):
    name = "p" * 101
    response = copr_client(alice).post(
        f"package/add/alice/hello/{name}/scm",
        {"package_name": name, "clone_url": "not a url", "max_builds": 500},
    )
    assert response.status_code == 400
    assert set(response.json()["error"].split("\n")) == {
        "package_name: Too long package name",
        "max_builds: 500 must be between 0 and 100.",
        "clone_url: clone_url must be a remote repository URL "
        "(http, https, git, ssh, svn, svn+ssh), not 'not a url'.",
    }
    assert not hello_project.packages.exists()


def test_package_edit_and_build_report_every_field(copr_client, alice, hello_project):
    added = copr_client(alice).post(
        "package/add/alice/hello/six/scm",
        {"package_name": "six", "clone_url": "https://e.org/six.git"},
    )
    assert added.status_code == 200, added.content
    edit = copr_client(alice).post(
        "package/edit/alice/hello/six/scm",
        {"package_name": "six", "clone_url": "nope", "timeout": -1, "webhook_rebuild": "maybe"},
    )
    assert edit.status_code == 400
    assert {line.split(":")[0] for line in edit.json()["error"].split("\n")} == {
        "timeout", "webhook_rebuild", "clone_url",
    }  # fmt: skip
    build = copr_client(alice).post(
        "package/build",
        {"ownername": "alice", "projectname": "hello", "package_name": "six",
         "chroots": ["nope-1-x86_64"], "timeout": 0, "enable_net": "maybe"},
    )  # fmt: skip
    assert build.status_code == 400
    assert {line.split(":")[0] for line in build.json()["error"].split("\n")} == {
        "chroots", "timeout", "enable_net",
    }  # fmt: skip


def test_chroot_edit_reports_the_form_then_the_reset_as_copr(copr_client, alice, hello_project):
    path = f"project-chroot/edit/alice/hello/{X86}"
    reset = {"reset_fields": ["additional_packages", "nonsense"]}
    response = copr_client(alice).post(path, {**reset, "isolation": "chroot"})
    assert response.status_code == 400
    assert response.json()["error"] == "isolation: 'chroot' is not a valid choice for this field"
    response = copr_client(alice).post(path, reset)
    assert response.status_code == 400
    assert response.json()["error"].split("\n") == [
        "Trying to reset an invalid attribute: nonsense",
        f"See `copr-cli get-chroot alice/hello/{X86}' for all the possible attributes",
    ]


def test_group_project_owner_with_hostile_group_name_is_refused(copr_client, staff_user):
    response = copr_client(UserFactory(username="carol")).post(
        "project/add/@..", {"name": "x", "chroots": [X86]}
    )
    assert response.status_code in (403, 404)
    assert not Project.objects.exists()


def test_build_from_urls_and_uploads_report_every_field(copr_client, alice, hello_project):
    common = {"ownername": "alice", "projectname": "hello", "chroots": ["nope-1-x86_64"]}
    by_url = copr_client(alice).post(
        "build/create/url", {**common, "pkgs": ["ftp://e.org/x.src.rpm"], "background": "?"}
    )
    assert by_url.status_code == 400
    assert {line.split(":")[0] for line in by_url.json()["error"].split("\n")} == {
        "background", "chroots", "pkgs",
    }  # fmt: skip
    client = copr_client(alice)
    no_file = client.client.post(
        "/api_3/build/create/upload",
        {"json": SimpleUploadedFile("json", json.dumps({**common, "timeout": 0}).encode())},
        headers=client.headers,
    )
    assert no_file.status_code == 400
    assert set(no_file.json()["error"].split("\n")) == {
        "pkgs: Send the package as the multipart file part 'pkgs'.",
        "timeout: 0 must be between 1 and 9223372036854775807.",
        "chroots: 'nope-1-x86_64' is not a valid choice for this field "
        "(chroots enabled in alice/hello: fedora-43-x86_64, fedora-44-x86_64)",
    }
    assert not Build.objects.exists()
