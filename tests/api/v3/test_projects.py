"""/api_3/project*, permissions, packages and misc endpoints: shapes, errors, permissions."""

import pytest

from apps.packages.models import Package
from apps.projects.models import PermissionLevel, Project, ProjectChroot, ProjectPermission
from tests.factories import (
    BuildFactory,
    BuildTaskFactory,
    GroupFactory,
    PermissionFactory,
    ProjectFactory,
)

pytestmark = pytest.mark.django_db
X86 = "fedora-43-x86_64"


def test_project_shape_has_coprs_keys(copr_client, hello_project):
    body = copr_client().get("project", {"ownername": "alice", "projectname": "hello"}).json()
    assert body["full_name"] == "alice/hello"
    assert body["chroot_repos"][X86] == f"http://copr.example.org/results/alice/hello/{X86}/"
    assert set(body) >= {
        "id", "name", "ownername", "homepage", "contact", "description", "instructions",
        "devel_mode", "persistent", "unlisted_on_hp", "auto_prune", "additional_repos",
        "enable_net", "bootstrap", "isolation", "module_hotfixes", "appstream",
        "packit_forge_projects_allowed", "follow_fedora_branching", "repo_priority", "storage",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"name": "bad name!", "chroots": [X86]}, 400, "name"),
        ({"name": "ok"}, 400, "At least one chroot"),
        ({"name": "ok", "chroots": ["nope-1-x86_64"]}, 400, "nope-1-x86_64"),
        ({"name": "ok", "chroots": [X86], "persistent": True}, 403, "persistent"),
        ({"name": "ok", "chroots": [X86], "isolation": "weird"}, 400, "isolation"),
        ({"name": "ok", "chroots": [X86], "storage": "pulp"}, 400, "storage"),
        ({"name": "ok", "chroots": [X86], "repo_priority": 0}, 400, "repo_priority"),
    ],
)
def test_project_add_errors_create_nothing(copr_client, alice, data, status, message):
    response = copr_client(alice).post("project/add/alice", data)
    assert response.status_code == status, response.content
    assert message in response.json()["error"]
    assert not Project.objects.exists()


def test_project_add_for_a_group_needs_membership(copr_client, alice):
    group = GroupFactory(name="team")
    data = {"name": "shared", "chroots": [X86]}
    assert copr_client(alice).post("project/add/@team", data).status_code == 403
    group.members.add(alice)
    body = copr_client(alice).post("project/add/@team", data).json()
    assert body["full_name"] == "@team/shared"
    assert copr_client().get("project/list", {"ownername": "@team"}).json()["items"][0]["id"]


def test_exist_ok_returns_the_existing_project_unchanged(copr_client, alice, hello_project):
    response = copr_client(alice).post(
        "project/add/alice", {"name": "hello", "chroots": [X86], "description": "new"},
        params={"exist_ok": "True"},
    )  # fmt: skip
    assert response.json()["id"] == hello_project.pk
    assert response.json()["description"] == ""
    again = copr_client(alice).post("project/add/alice", {"name": "hello", "chroots": [X86]})
    assert again.status_code == 400


def test_edit_applies_only_sent_keys(copr_client, alice, bob, hello_project):
    path = "project/edit/alice/hello"
    assert copr_client(bob).put(path, {"description": "x"}).status_code == 403
    body = (
        copr_client(alice)
        .put(path, {"description": "new", "repos": ["https://e.org/r/"], "chroots": [X86]})
        .json()
    )
    assert body["description"] == "new" and body["additional_repos"] == ["https://e.org/r/"]
    assert list(body["chroot_repos"]) == [X86]
    copr_client(alice).post(path, {"enable_net": True})  # POST is Copr's deprecated alias
    hello_project.refresh_from_db()
    assert hello_project.enable_net and hello_project.description == "new"


def test_delete_needs_verify_and_permission(copr_client, alice, bob, hello_project):
    path = "project/delete/alice/hello"
    assert copr_client(alice).delete(path, {}).status_code == 400
    assert copr_client(bob).delete(path, {"verify": True}).status_code == 403
    assert copr_client(alice).delete(path, {"verify": True}).json()["name"] == "hello"
    assert not Project.objects.exists()


def test_search_finds_by_name_and_full_name(copr_client, hello_project):
    assert [p["full_name"] for p in copr_client().get("project/search", {"query": "hel"}).json()[
        "items"
    ]] == ["alice/hello"]  # fmt: skip
    found = copr_client().get("project/search", {"query": "alice/hello"}).json()["items"]
    assert [p["id"] for p in found] == [hello_project.pk]
    assert copr_client().get("project/search").status_code == 400


def test_fork_with_a_build_copies_it_as_forked(copr_client, bob, hello_project, settings):
    build = BuildFactory(project=hello_project)
    task = BuildTaskFactory(build=build, result_dir=f"{X86}/00000001-hello", result_files=[])
    (settings.RESULTS_ROOT / "alice/hello" / task.result_dir).mkdir(parents=True)
    body = (
        copr_client(bob)
        .post("project/fork/alice/hello", {"name": "hello-fork", "ownername": "bob"})
        .json()
    )
    assert body["full_name"] == "bob/hello-fork"
    fork = Project.objects.get(pk=body["id"])
    assert fork.forked_from == hello_project
    assert fork.builds.get().state == "forked"
    denied = copr_client(bob).post("project/fork/alice/hello", {"name": "x", "ownername": "alice"})
    assert denied.status_code == 403


def test_permissions_set_is_all_or_nothing(copr_client, alice, bob, hello_project):
    path = "project/permissions/set/alice/hello"
    response = copr_client(alice).put(
        path, {"bob": {"builder": "approved"}, "ghost": {"builder": "approved"}}
    )
    assert response.status_code == 400 and "ghost" in response.json()["error"]
    assert not ProjectPermission.objects.exists()
    bad_level = copr_client(alice).put(path, {"bob": {"builder": "yes"}})
    assert bad_level.status_code == 400
    assert not ProjectPermission.objects.exists()
    owner = copr_client(alice).put(path, {"alice": {"admin": "approved"}})
    assert owner.status_code == 400
    assert copr_client(alice).put(path, {"bob": {"admin": "approved"}}).json() == {
        "updated": ["bob"]
    }


def test_permissions_get_and_request(copr_client, alice, bob, hello_project):
    get_path = "project/permissions/get/alice/hello"
    assert copr_client(alice).get(get_path).status_code == 404  # none set yet, as in Copr
    assert copr_client().get(get_path).status_code == 401
    request_path = "project/permissions/request/alice/hello"
    assert copr_client(bob).put(request_path, {"admin": True}).json() == {"updated": True}
    assert copr_client(bob).put(request_path, {"admin": True}).json() == {"updated": False}
    assert ProjectPermission.objects.get(user=bob).admin == PermissionLevel.REQUEST
    assert copr_client(alice).put(request_path, {"admin": True}).status_code == 400
    assert copr_client(bob).get(get_path).status_code == 403


def test_project_chroot_get_edit_build_config(copr_client, alice, bob, hello_project):
    params = {"ownername": "alice", "projectname": "hello", "chrootname": X86}
    assert copr_client().get("project-chroot", params).json()["mock_chroot"] == X86
    path = f"project-chroot/edit/alice/hello/{X86}"
    assert copr_client(bob).put(path, {"with_opts": "x"}).status_code == 403
    assert copr_client(alice).put(path, {"isolation": "weird"}).status_code == 400
    copr_client(alice).put(path, {"additional_packages": "make gcc", "bootstrap_image": "img"})
    chroot = ProjectChroot.objects.get(project=hello_project, chroot__name=X86)
    assert chroot.additional_packages == ["make", "gcc"] and chroot.bootstrap == "custom_image"
    copr_client(alice).put(path, {"reset_fields": ["additional_packages"]})
    chroot.refresh_from_db()
    assert chroot.additional_packages == []
    config = copr_client().get("project-chroot/build-config", params).json()
    assert config["repos"][0]["baseurl"].endswith(f"/results/alice/hello/{X86}/")
    # copr-cli mock-config writes these into its mock profile; `unchanged` is not mock's.
    assert (config["bootstrap"], config["bootstrap_image"]) == ("custom_image", "img")
    assert "isolation" not in config  # the project's `default`: the base config decides
    hello_project.isolation = "nspawn"
    hello_project.save()
    config = copr_client().get("project-chroot/build-config", params).json()
    assert config["isolation"] == "nspawn"
    missing = copr_client().get("project-chroot", {**params, "chrootname": "no-1-x"})
    assert missing.json() == {"error": "Chroot no-1-x does not exist"}


def test_packages_add_edit_none_and_errors(copr_client, alice, bob, hello_project):
    client = copr_client(alice)
    added = client.post(
        "package/add/alice/hello/six/pypi",
        {"package_name": "six", "pypi_package_name": "six", "max_builds": 3},
    )
    assert added.status_code == 200, added.content
    assert added.json()["source_dict"]["pypi_package_name"] == "six"
    duplicate = client.post("package/add/alice/hello/six/pypi", {"pypi_package_name": "six"})
    assert duplicate.status_code == 409
    unsupported = client.post("package/add/alice/hello/x/link", {"url": "https://e.org/x"})
    assert unsupported.status_code == 400
    assert "Unsupported package source type link" in unsupported.json()["error"]
    edited = client.post("package/edit/alice/hello/six/None", {"webhook_rebuild": True})
    assert edited.json()["auto_rebuild"] is True
    package = Package.objects.get(name="six")
    assert package.source_json["pypi_package_name"] == "six" and package.max_builds == 3
    forbidden = copr_client(bob).post("package/edit/alice/hello/six/pypi", {"spec_template": ""})
    assert forbidden.status_code == 403
    assert Package.objects.count() == 1


def test_monitor_and_its_field_check(copr_client, hello_project):
    build = BuildFactory(project=hello_project, package_name="hello", package_version="1.0-1")
    BuildTaskFactory(build=build, result_dir=f"{X86}/00000001-hello")
    body = copr_client().get(
        "monitor", {"ownername": "alice", "projectname": "hello",
                    "additional_fields[]": "url_build_log"},
    ).json()  # fmt: skip
    entry = body["packages"][0]["chroots"][X86]
    assert body["output"] == "ok"
    assert entry["status"] == 1 and entry["build_id"] == build.pk
    # A finished task: Copr links the compressed log.
    assert entry["url_build_log"].endswith("00000001-hello/builder-live.log.gz")
    bad = copr_client().get(
        "monitor", {"ownername": "alice", "projectname": "hello", "additional_fields[]": "x"}
    )
    assert bad.status_code == 400


def test_webhook_generate_needs_edit_rights(copr_client, alice, bob, hello_project):
    assert copr_client(bob).post("webhook/generate/alice/hello").status_code == 403
    body = copr_client(alice).post("webhook/generate/alice/hello").json()
    hello_project.refresh_from_db()
    assert body["webhook_secret"] == hello_project.webhook_secret


def test_rpmrepo_for_the_dnf5_plugin(copr_client, hello_project):
    body = copr_client().get("rpmrepo/alice/hello/fedora-43").json()
    assert body["results_url"] == "http://copr.example.org/results"
    assert body["repos"] == {"fedora-43": {"arch": {"x86_64": {"opts": {}}}}}
    assert copr_client().get("rpmrepo/alice/hello/epel-9").status_code == 404


def test_can_build_in(copr_client, bob, hello_project):
    path = "project/permissions/can_build_in/bob/alice/hello"
    assert copr_client().get(path).json()["can_build_in"] is False
    PermissionFactory(project=hello_project, user=bob, builder="approved")
    assert copr_client().get(path).json()["can_build_in"] is True


def copr_cli_error(response) -> str:
    """The error as copr-cli prints it after `Error: ` (python-copr's own rendering)."""
    from copr.v3.exceptions import CoprRequestException

    return str(CoprRequestException(response.json()["error"]))


def test_fork_into_an_existing_project_answers_with_coprs_two_lines(
    copr_client, alice, hello_project
):
    ProjectFactory(owner_user=alice, name="target")
    data = {"name": "target", "ownername": "alice"}
    refused = copr_client(alice).post("project/fork/alice/hello", data)
    assert refused.status_code == 400
    assert copr_cli_error(refused).splitlines() == [
        "",
        "- You are about to fork into existing project: alice/target",
        "- Please use --confirm if you really want to do this",
    ]
    confirmed = copr_client(alice).post("project/fork/alice/hello", {**data, "confirm": True})
    assert confirmed.json()["full_name"] == "alice/target"


def test_fork_field_errors_reach_copr_cli_in_coprs_form_shape(copr_client, alice, hello_project):
    one = copr_client(alice).post("project/fork/alice/hello", {"name": "bad name!"})
    # One field: python-copr prints Copr's one `field: message` line as it is.
    assert copr_cli_error(one).startswith("name: ")
    data = {"name": "bad name!", "confirm": "maybe"}
    two = copr_client(alice).post("project/fork/alice/hello", data)
    lines = copr_cli_error(two).splitlines()[1:]
    assert [line.split(":")[0] for line in lines] == ["- name", "- confirm"]
