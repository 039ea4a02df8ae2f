"""Tests for the project endpoints of apps/api/v1: CRUD by role, validation, chroots, lists."""

import pytest

from apps.builds.models import State
from apps.projects.models import PermissionLevel, Project, ProjectChroot
from tests.api.v1.conftest import PUBLIC_URL, planner_estimate_queries
from tests.factories import (
    BuildFactory,
    GroupFactory,
    PermissionFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

PROJECTS = "/api/v1/projects"
NEW_PROJECT = {
    "name": "tools",
    "chroots": ["fedora-43-x86_64", "epel-9-x86_64"],
    "description": "Handy tools",
    "instructions": "dnf copr enable alice/tools",
    "homepage": "https://example.org/tools",
    "contact": "alice@example.org",
    "enable_net": True,
    "additional_repos": ["https://example.org/extra/"],
    "unlisted_on_hp": True,
}
NAME_RULE = "name: Name must contain only letters, digits, underscores, dashes and dots."
NOT_ACTIVE = "chroots: '{}' is not a valid choice for this field"


def test_owner_creates_a_project_and_gets_its_shape(client_for, alice):
    response = client_for(alice).post(PROJECTS, NEW_PROJECT, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == "alice" and body["name"] == "tools"
    assert body["full_name"] == "alice/tools"
    assert body["description"] == "Handy tools" and body["enable_net"] is True
    assert body["additional_repos"] == ["https://example.org/extra/"]
    assert body["unlisted_on_hp"] is True and body["auto_prune"] is True
    assert body["chroots"] == ["epel-9-x86_64", "fedora-43-x86_64"]
    assert body["chroot_repos"] == {
        "epel-9-x86_64": f"{PUBLIC_URL}/results/alice/tools/epel-9-x86_64/",
        "fedora-43-x86_64": f"{PUBLIC_URL}/results/alice/tools/fedora-43-x86_64/",
    }
    assert body["links"] == {
        "self": "http://testserver/api/v1/projects/alice/tools",
        "builds": "http://testserver/api/v1/projects/alice/tools/builds",
        "chroots": "http://testserver/api/v1/projects/alice/tools/chroots",
    }
    assert response["Location"] == body["links"]["self"]
    project = Project.objects.get(name="tools")
    assert project.owner_user == alice and project.created_by == alice
    assert "webhook_secret" not in body


def test_anyone_reads_a_project(client_for, hello_project):
    response = client_for().get("/api/v1/projects/alice/hello")

    assert response.status_code == 200
    assert response.json()["id"] == hello_project.pk
    assert response.json()["chroots"] == ["fedora-43-x86_64", "fedora-44-x86_64"]


def test_unknown_project_is_404_with_its_name(client_for, alice):
    response = client_for().get("/api/v1/projects/alice/nope")

    assert response.status_code == 404
    assert response.json() == {"error": "Project alice/nope does not exist."}


def test_anonymous_cannot_write(client_for, hello_project):
    anonymous = client_for()

    created = anonymous.post(PROJECTS, NEW_PROJECT, format="json")
    edited = anonymous.patch("/api/v1/projects/alice/hello", {"description": "x"}, format="json")
    deleted = anonymous.delete("/api/v1/projects/alice/hello")

    assert [created.status_code, edited.status_code, deleted.status_code] == [401, 401, 401]
    assert created["WWW-Authenticate"].startswith("Basic")
    assert "error" in created.json()
    hello_project.refresh_from_db()
    assert hello_project.description == "" and Project.objects.count() == 1


def test_other_user_cannot_edit_or_delete(client_for, hello_project, bob):
    client = client_for(bob)

    edited = client.patch("/api/v1/projects/alice/hello", {"description": "x"}, format="json")
    deleted = client.delete("/api/v1/projects/alice/hello")

    assert edited.status_code == 403
    assert edited.json() == {"error": "You are not allowed to edit alice/hello."}
    assert deleted.status_code == 403
    hello_project.refresh_from_db()
    assert hello_project.description == "" and Project.objects.count() == 1


def test_other_user_cannot_create_in_someone_elses_name(client_for, alice, bob):
    response = client_for(bob).post(PROJECTS, {**NEW_PROJECT, "owner": "alice"}, format="json")

    assert response.status_code == 403
    assert response.json()["error"] == "You cannot create projects owned by alice."
    assert Project.objects.count() == 0


def test_owner_edits_settings_and_replaces_chroots(client_for, alice, hello_project):
    response = client_for(alice).patch(
        "/api/v1/projects/alice/hello",
        {"description": "new", "enable_net": True, "chroots": ["epel-9-x86_64"]},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert response.json()["description"] == "new"
    assert response.json()["chroots"] == ["epel-9-x86_64"]
    assert list(hello_project.project_chroots.values_list("chroot__name", flat=True)) == [
        "epel-9-x86_64"
    ]


def test_patch_without_chroots_keeps_them_and_other_settings(client_for, alice, hello_project):
    response = client_for(alice).patch(
        "/api/v1/projects/alice/hello", {"contact": "me@example.org"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["chroots"] == ["fedora-43-x86_64", "fedora-44-x86_64"]
    hello_project.refresh_from_db()
    assert hello_project.contact == "me@example.org" and hello_project.auto_prune is True


def test_failed_edit_changes_nothing(client_for, alice, hello_project):
    response = client_for(alice).patch(
        "/api/v1/projects/alice/hello",
        {"description": "new", "chroots": ["fedora-99-x86_64"]},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"] == NOT_ACTIVE.format("fedora-99-x86_64")
    hello_project.refresh_from_db()
    assert hello_project.description == ""
    assert hello_project.project_chroots.count() == 2


def test_owner_deletes_a_project(client_for, alice, hello_project):
    response = client_for(alice).delete("/api/v1/projects/alice/hello")

    assert response.status_code == 204
    assert not Project.objects.exists()


def test_staff_edits_and_deletes_any_project(client_for, staff_user, hello_project):
    client = client_for(staff_user)

    edited = client.patch("/api/v1/projects/alice/hello", {"persistent": True}, format="json")
    deleted = client.delete("/api/v1/projects/alice/hello")

    assert edited.status_code == 200 and edited.json()["persistent"] is True
    assert deleted.status_code == 204
    assert not Project.objects.exists()


def test_staff_creates_a_project_for_a_user(client_for, staff_user, alice):
    response = client_for(staff_user).post(
        PROJECTS, {**NEW_PROJECT, "owner": "alice"}, format="json"
    )

    assert response.status_code == 201
    assert Project.objects.get().owner_user == alice


def test_only_staff_makes_projects_persistent(client_for, alice):
    response = client_for(alice).post(PROJECTS, {**NEW_PROJECT, "persistent": True}, format="json")

    assert response.status_code == 403
    assert response.json() == {"error": "Only staff can make projects persistent."}
    assert Project.objects.count() == 0


def test_group_member_creates_a_group_project(client_for, alice):
    GroupFactory(name="devs").members.add(alice)

    response = client_for(alice).post(PROJECTS, {**NEW_PROJECT, "owner": "@devs"}, format="json")

    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["owner"] == "@devs" and body["full_name"] == "@devs/tools"
    assert body["links"]["self"] == "http://testserver/api/v1/projects/@devs/tools"
    assert body["chroot_repos"]["epel-9-x86_64"] == (
        f"{PUBLIC_URL}/results/@devs/tools/epel-9-x86_64/"
    )
    assert client_for().get("/api/v1/projects/@devs/tools").status_code == 200


def test_non_member_cannot_create_a_group_project(client_for, bob):
    GroupFactory(name="devs")

    response = client_for(bob).post(PROJECTS, {**NEW_PROJECT, "owner": "@devs"}, format="json")

    assert response.status_code == 403
    assert response.json() == {"error": "You cannot create projects owned by @devs."}
    assert Project.objects.count() == 0


def test_group_member_edits_the_group_project(client_for, alice):
    group = GroupFactory(name="devs")
    group.members.add(alice)
    ProjectFactory(name="tools", owner_user=None, owner_group=group)

    response = client_for(alice).patch(
        "/api/v1/projects/@devs/tools", {"description": "ours"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["description"] == "ours"


def test_approved_admin_edits_but_builder_does_not(client_for, hello_project, bob):
    carol = UserFactory(username="carol")
    PermissionFactory(project=hello_project, user=bob, admin=PermissionLevel.APPROVED)
    PermissionFactory(project=hello_project, user=carol, builder=PermissionLevel.APPROVED)

    by_admin = client_for(bob).patch(
        "/api/v1/projects/alice/hello", {"description": "a"}, format="json"
    )
    by_builder = client_for(carol).patch(
        "/api/v1/projects/alice/hello", {"description": "b"}, format="json"
    )

    assert (by_admin.status_code, by_builder.status_code) == (200, 403)


@pytest.mark.parametrize(
    ("change", "expected_error"),
    [
        ({"name": "bad name!"}, NAME_RULE),
        ({"name": "1234"}, "name: Project's name can not be just number."),
        ({"name": ".."}, "name: '..' is not a valid project name."),
        ({"name": "проект"}, NAME_RULE),
        ({"additional_repos": ["file:///etc"]}, "additional_repos: 'file:///etc' is not a"),
        ({"name": "x" * 101}, "name: Ensure this field has no more than 100 characters."),
        ({"enable_net": "maybe"}, "enable_net: Must be a valid boolean."),
        (
            {"additional_repos": "x"},
            'additional_repos: Expected a list of items but got type "str".',
        ),
        ({"additional_repos": [{"a": 1}]}, "additional_repos.0: Not a valid string."),
        ({"homepage": "not a url"}, "homepage: Enter a valid URL."),
        ({"repo_priority": 0}, "repo_priority: Ensure this value is greater than or equal to 1."),
        ({"isolation": "docker"}, 'isolation: "docker" is not a valid choice.'),
        ({"chroots": "fedora-43-x86_64,x"}, NOT_ACTIVE.format("x")),
        ({"chroots": []}, "chroots: At least one chroot must be selected"),
        ({"chroots": ["fedora-99-x86_64"]}, NOT_ACTIVE.format("fedora-99-x86_64")),
        ({"enable_network": True}, "enable_network: Unknown or read-only field."),
        ({"id": 7}, "id: Unknown or read-only field."),
        # The largest integer depends on the database; the message starts the same.
        ({"repo_priority": 2**70}, "repo_priority: Ensure this value is less than or equal to"),
        ({"delete_after": "soon"}, "delete_after: Datetime has wrong format."),
        ({"contact": "a\x00b"}, "contact: NUL characters are not allowed."),
    ],
)
def test_invalid_project_is_400_and_creates_nothing(client_for, alice, change, expected_error):
    response = client_for(alice).post(PROJECTS, {**NEW_PROJECT, **change}, format="json")

    assert response.status_code == 400
    assert response.json()["error"].startswith(expected_error)
    assert Project.objects.count() == 0 and ProjectChroot.objects.count() == 0


def test_field_errors_are_listed_per_field(client_for, alice):
    response = client_for(alice).post(
        PROJECTS, {"name": "", "enable_net": "maybe", "chroots": ["f"]}, format="json"
    )

    assert response.status_code == 400
    body = response.json()
    assert set(body["fields"]) == {"name", "enable_net"}
    assert body["error"].splitlines() == [
        "name: This field may not be blank.",
        "enable_net: Must be a valid boolean.",
    ]


def test_missing_required_fields(client_for, alice):
    response = client_for(alice).post(PROJECTS, {}, format="json")

    assert response.status_code == 400
    assert response.json()["error"].splitlines() == [
        "name: This field is required.",
        "chroots: This field is required.",
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        ("{not json", "application/json", 400),
        ("[1, 2]", "application/json", 400),
        ("null", "application/json", 400),
        ('"text"', "application/json", 400),
        ("name=tools&chroots=fedora-43-x86_64", "application/x-www-form-urlencoded", 415),
    ],
)
def test_malformed_bodies_are_4xx_not_500(client_for, alice, body, content_type, status):
    response = client_for(alice).generic("POST", PROJECTS, body, content_type=content_type)

    assert response.status_code == status
    assert response.json()["error"]
    assert Project.objects.count() == 0


def test_duplicate_project_is_400_as_in_copr(client_for, alice, hello_project):
    response = client_for(alice).post(PROJECTS, {**NEW_PROJECT, "name": "hello"}, format="json")

    assert response.status_code == 400
    assert response.json()["error"] == "name: You already have a project named 'hello'."
    assert Project.objects.count() == 1


def test_empty_patch_changes_nothing(client_for, alice, hello_project):
    response = client_for(alice).generic("PATCH", "/api/v1/projects/alice/hello")

    assert response.status_code == 200
    hello_project.refresh_from_db()
    assert hello_project.auto_prune is True and hello_project.follow_fedora_branching is True


def test_list_filters_by_owner_and_pages(client_for, alice, bob):
    for name in ("a", "b", "c"):
        ProjectFactory(name=name, owner_user=alice)
    ProjectFactory(name="d", owner_user=bob)

    everything = client_for().get(PROJECTS).json()
    alices = client_for().get(PROJECTS, {"owner": "alice", "limit": 2, "offset": 1}).json()

    assert everything["count"] == 4
    assert alices["count"] == 3
    assert [project["name"] for project in alices["results"]] == ["b", "c"]
    assert client_for().get(PROJECTS, {"owner": "@nobody"}).json()["count"] == 0


def test_list_needs_a_fixed_number_of_queries(client_for, django_assert_max_num_queries):
    group = GroupFactory(name="devs")
    for index in range(6):
        ProjectFactory(
            name=f"p{index}",
            owner_user=None if index % 2 else UserFactory(username=f"u{index}"),
            owner_group=group if index % 2 else None,
            chroot_names=["fedora-43-x86_64", "epel-9-x86_64"],
        )
    client = client_for()

    # count, page's ids, page, prefetched chroots; on PostgreSQL the planner's estimate first
    with django_assert_max_num_queries(4 + planner_estimate_queries()):
        response = client.get(PROJECTS)

    assert response.status_code == 200
    assert len(response.json()["results"]) == 6
    assert all(len(project["chroots"]) == 2 for project in response.json()["results"])


def test_project_chroots(client_for, hello_project):
    project_chroot = hello_project.project_chroots.get(chroot__name="fedora-44-x86_64")
    project_chroot.additional_packages = ["ccache"]
    project_chroot.with_opts = ["tests"]
    project_chroot.save()

    response = client_for().get("/api/v1/projects/alice/hello/chroots")

    assert response.status_code == 200
    assert response.json() == [
        {
            "name": "fedora-43-x86_64",
            "arch": "x86_64",
            "os_release": "fedora",
            "os_version": "43",
            "is_active": True,
            "additional_repos": [],
            "additional_packages": [],
            "with_opts": [],
            "without_opts": [],
        },
        {
            "name": "fedora-44-x86_64",
            "arch": "x86_64",
            "os_release": "fedora",
            "os_version": "44",
            "is_active": True,
            "additional_repos": [],
            "additional_packages": ["ccache"],
            "with_opts": ["tests"],
            "without_opts": [],
        },
    ]


def test_chroots_of_unknown_project_is_404(client_for, db):
    response = client_for().get("/api/v1/projects/@devs/nope/chroots")

    assert response.status_code == 404
    assert response.json() == {"error": "Project @devs/nope does not exist."}


def test_project_with_unfinished_builds_is_not_deleted(client_for, alice, hello_project):
    BuildFactory(project=hello_project, state=State.RUNNING)

    response = client_for(alice).delete("/api/v1/projects/alice/hello")

    assert response.status_code == 409
    assert response.json() == {"error": "alice/hello has unfinished builds; cancel them first."}
    assert Project.objects.filter(pk=hello_project.pk).exists()


def test_owner_cannot_delete_a_persistent_project(client_for, alice, hello_project):
    hello_project.persistent = True
    hello_project.save()

    response = client_for(alice).delete("/api/v1/projects/alice/hello")

    assert response.status_code == 403
    assert Project.objects.filter(pk=hello_project.pk).exists()


@pytest.mark.parametrize("query", ["limit=abc&offset=-3", "limit=0", "limit=99999", "offset=x"])
def test_odd_paging_parameters_still_answer(client_for, hello_project, query):
    response = client_for().get(f"{PROJECTS}?{query}")

    assert response.status_code == 200
    assert response.json()["count"] == 1
