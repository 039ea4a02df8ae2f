"""Copr's read-only /backend/ endpoints, read over HTTP as Copr's backend and operators do."""

import json

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from apps.builds.models import Batch, Priority, State
from apps.core.queue import send_on_commit
from apps.projects.models import Chroot, ProjectChroot
from apps.repos.models import KeyState, Repository, SigningKey
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, UserFactory, chroot

pytestmark = pytest.mark.django_db
X86 = "fedora-43-x86_64"
ARM = "fedora-43-aarch64"
PUBLIC_URL = "http://copr.example.org"


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.PUBLIC_URL = PUBLIC_URL


@pytest.fixture
def project():
    alice = UserFactory(username="alice")
    return ProjectFactory(owner_user=alice, name="tools", chroot_names=[X86, ARM])


def get(path: str):
    response = Client().get(path)
    assert response["Copr-FE-BE-API-Version"] == "9"
    return response


def queued_build(project, *, source_state, chroot_states=(), background=False, **fields):
    build = BuildFactory(project=project, state=State.PENDING, is_background=background, **fields)
    BuildTaskFactory(build=build, chroot=None, state=source_state, priority=Priority.SOURCE)
    for name, state in chroot_states:
        BuildTaskFactory(build=build, chroot=chroot(name), state=state)
    return build


def test_pending_jobs_lists_source_then_rpm_tasks_in_copr_order(project):
    background = queued_build(project, source_state=State.PENDING, background=True)
    srpm = queued_build(project, source_state=State.RUNNING)
    rpms = queued_build(
        project,
        source_state=State.SUCCEEDED,
        chroot_states=[(X86, State.PENDING), (ARM, State.RUNNING)],
    )
    blocked = queued_build(
        project, source_state=State.SUCCEEDED, chroot_states=[(X86, State.WAITING)]
    )
    blocked.batch = Batch.objects.create()
    blocked.save()
    queued_build(project, source_state=State.SUCCEEDED, chroot_states=[(X86, State.SUCCEEDED)])
    queued_build(project, source_state=State.PENDING, canceled=True)

    with CaptureQueriesContext(connection) as queries:
        jobs = get("/backend/pending-jobs/").json()
    assert len(queries) == 2  # one per kind of task, however many there are
    assert [job["task_id"] for job in jobs] == [
        str(srpm.pk),
        str(background.pk),
        f"{rpms.pk}-{ARM}",
        f"{rpms.pk}-{X86}",
    ]
    assert jobs[0] == {
        "task_id": str(srpm.pk),
        "build_id": srpm.pk,
        "project_owner": "alice",
        "sandbox": "alice/tools--alice",
        "background": False,
        "chroot": None,
    }
    assert jobs[1]["background"] is True
    assert jobs[3] == {
        "task_id": f"{rpms.pk}-{X86}",
        "build_id": rpms.pk,
        "project_owner": "alice",
        "sandbox": "alice/tools--alice",
        "background": False,
        "chroot": X86,
        "tags": [],
        "allow_user_ssh": False,
    }
    assert get("/backend/pending-jobs").json() == jobs  # the slash is optional, as in Copr


def test_pending_actions_answer_in_coprs_shape_and_order(project):
    repository = Repository.objects.create(
        project=project, project_dirname="tools", chroot=chroot(X86), requested_serial=2
    )
    Repository.objects.create(
        project=project,
        project_dirname="tools",
        chroot=chroot(ARM),
        requested_serial=1,
        published_serial=1,
    )
    key = SigningKey.objects.create(project=project, state=KeyState.PENDING)
    send_on_commit("remove_project_results", "alice", ["old"])  # still in the outbox
    actions = get("/backend/pending-actions/").json()
    # Copr's keys only, integer ids, priority first: gen_gpg_key -70, createrepo 0, delete 60.
    assert [set(a) for a in actions] == [{"id", "priority", "project_owner"}] * 3
    assert [(a["priority"], a["project_owner"]) for a in actions] == [
        (-70, "alice"), (0, "alice"), (60, "alice"),
    ]  # fmt: skip
    assert all(isinstance(a["id"], int) for a in actions)

    key_action, createrepo, delete = (get(f"/backend/action/{a['id']}/").json() for a in actions)
    assert (key_action["action_type"], key_action["object_id"]) == (5, project.pk)
    assert (createrepo["action_type"], createrepo["object_type"]) == (3, "repository")
    assert createrepo["object_id"] == repository.pk and createrepo["result"] == 0
    assert set(createrepo) == {
        "id", "action_type", "object_type", "object_id", "old_value", "new_value", "data",
        "priority", "result", "message", "created_on", "ended_on",
    }  # fmt: skip
    data = json.loads(createrepo["data"])  # JSON text, as Copr keeps it
    assert (data["projectname"], data["chroots"], data["devel"]) == ("tools", [X86], False)
    assert delete["action_type"] == 0
    assert json.loads(delete["data"])["project_dirnames"] == ["old"]

    assert get("/backend/pending-action/").json() == key_action
    assert get("/backend/pending-action-count").json() == 3
    key.delete()
    assert get(f"/backend/action/{actions[0]['id']}").content == b"null"  # done
    assert get("/backend/pending-action-count/").json() == 2


def test_a_fork_waiting_for_its_copies_is_a_fork_action(project):
    original = BuildTaskFactory(
        build=BuildFactory(project=project), chroot=chroot(X86),
        state=State.SUCCEEDED, result_dir=f"{X86}/00000007-hello",
    )  # fmt: skip
    fork = ProjectFactory(owner_user=UserFactory(username="bob"), name="fork", chroot_names=[X86])
    BuildTaskFactory(
        build=BuildFactory(project=fork), chroot=chroot(X86), state=State.FORKED,
        forked_from=original, result_dir=f"{X86}/00000009-hello",
    )  # fmt: skip
    (pending,) = get("/backend/pending-actions/").json()
    assert pending["project_owner"] == "bob"
    action = get("/backend/pending-action/").json()
    assert (action["action_type"], action["object_type"], action["object_id"]) == (
        7, "copr", fork.pk,
    )  # fmt: skip
    assert (action["old_value"], action["new_value"]) == ("alice/tools", "bob/fork")
    data = json.loads(action["data"])
    assert data["builds_map"] == {X86: {"00000007-hello": "00000009-hello"}}
    assert get("/backend/pending-action/").json()["id"] == pending["id"]


def test_no_pending_action_is_null(project):
    assert get("/backend/pending-actions/").json() == []
    assert get("/backend/pending-action/").content == b"null"
    assert get("/backend/pending-action-count/").json() == 0
    assert get("/backend/action/12345/").content == b"null"


def test_get_build_task_gives_the_full_job_description(project):
    ProjectFactory(owner_user=UserFactory(username="bob"), name="lib", module_hotfixes=True)
    project.additional_repos = ["copr://bob/lib", "https://example.org/$chroot/?priority=5"]
    project.module_hotfixes = True
    project.devel_mode = True
    project.isolation = "nspawn"
    project.save()
    ProjectChroot.objects.filter(project=project, chroot__name=X86).update(
        additional_packages=["make", "gcc"],
        additional_modules=["nodejs:20", "!ruby:3"],
        with_opts=["docs"],
        additional_repos=["https://example.org/extra/"],
        bootstrap="off",
    )
    build = queued_build(
        project,
        source_state=State.SUCCEEDED,
        chroot_states=[(X86, State.PENDING)],
        timeout=7200,
        enable_net=True,
        srpm_url="alice/tools/srpm-builds/00000001/hello-1.0-1.src.rpm",
    )
    record = get(f"/backend/get-build-task/{build.pk}-{X86}/").json()
    results = f"{PUBLIC_URL}/results"
    assert record["repos"] == [
        {
            "id": "copr_base",
            "name": "Copr repository",
            "baseurl": f"{results}/alice/tools/{X86}/",
            "module_hotfixes": True,
        },
        {
            "id": "copr_base_devel",
            "name": "Copr buildroot",
            "baseurl": f"{results}/alice/tools/{X86}/devel/",
        },
        {
            "id": "copr_bob_lib",
            "name": "Additional repo copr_bob_lib",
            "baseurl": f"{results}/bob/lib/{X86}/",
            "module_hotfixes": True,  # bob/lib's own setting, as Copr resolves copr:// repos
        },
        {
            "id": "https_example_org_chroot_priority_5",
            "name": "Additional repo https_example_org_chroot_priority_5",
            "baseurl": f"https://example.org/{X86}/",
            "priority": 5,
        },
        {
            "id": "https_example_org_extra",
            "name": "Additional repo https_example_org_extra",
            "baseurl": "https://example.org/extra/",
        },
    ]
    assert record["task_id"] == f"{build.pk}-{X86}"
    assert record["chroot"] == X86
    assert record["project_owner"] == "alice" and record["project_name"] == "tools"
    assert record["project_dirname"] == "tools" and record["submitter"] == "alice"
    assert record["timeout"] == 7200 and record["enable_net"] is True
    assert record["uses_devel_repo"] is True
    assert record["isolation"] == "nspawn" and record["bootstrap"] == "off"
    assert record["buildroot_pkgs"] == ["make", "gcc"]
    assert record["with_opts"] == ["docs"] and record["without_opts"] == []
    assert record["modules"] == {"toggle": [{"enable": "nodejs:20"}, {"disable": "ruby:3"}]}
    assert record["tags"] == [] and record["memory_reqs"] == 2048
    assert record["package_name"] == "hello" and record["package_version"] == "1.0-1"
    assert json.loads(record["source_json"]) == {"url": f"{results}/{build.srpm_url}"}
    body = json.dumps(record)
    assert str(project.webhook_secret) not in body  # nothing secret in a public endpoint


def test_copr_repos_carry_only_their_own_projects_module_hotfixes(project):
    bob = UserFactory(username="bob")
    ProjectFactory(owner_user=bob, name="lib", module_hotfixes=True)
    ProjectFactory(owner_user=bob, name="plain")
    project.additional_repos = ["copr://bob/lib", "copr://bob/plain", "copr://bob/missing"]
    project.save()
    build = queued_build(
        project, source_state=State.SUCCEEDED, chroot_states=[(X86, State.PENDING)]
    )
    repos = get(f"/backend/get-build-task/{build.pk}-{X86}/").json()["repos"]
    assert [(repo["id"], repo.get("module_hotfixes")) for repo in repos] == [
        ("copr_base", None),
        ("copr_bob_lib", True),
        ("copr_bob_plain", None),
        ("copr_bob_missing", None),  # still a repository: dnf says so if it is not there
    ]


def test_with_the_pulp_store_every_repository_of_a_build_is_a_pulp_distribution(project, settings):
    """Builds install from Pulp's content app: their own project's repositories (main and
    devel) and those `copr://` names, each its distribution's current publication."""
    settings.REPOSITORY_STORE = "pulp"
    settings.PULP_CONTENT_URL = "https://pulp.example.org/pulp/content"
    ProjectFactory(owner_user=UserFactory(username="bob"), name="lib")
    project.additional_repos = ["copr://bob/lib"]
    project.devel_mode = True
    project.save()
    build = queued_build(
        project, source_state=State.SUCCEEDED, chroot_states=[(X86, State.PENDING)]
    )

    repos = get(f"/backend/get-build-task/{build.pk}-{X86}/").json()["repos"]

    content = settings.PULP_CONTENT_URL
    assert [(repo["id"], repo["baseurl"]) for repo in repos] == [
        ("copr_base", f"{content}/alice/tools/{X86}/"),
        ("copr_base_devel", f"{content}/alice/tools/{X86}-devel/"),
        ("copr_bob_lib", f"{content}/bob/lib/{X86}/"),
    ]


@pytest.mark.parametrize(
    ("levels", "isolation"),
    [
        # (project, chroot, build) isolation settings, as Copr layers them.
        (("default", "unchanged", "unchanged"), "default"),
        (("nspawn", "unchanged", "unchanged"), "nspawn"),
        (("simple", "nspawn", "unchanged"), "nspawn"),
        (("simple", "nspawn", "default"), "default"),
        (("nspawn", "unchanged", "simple"), "simple"),
    ],
)
def test_build_isolation_overrides_chroot_and_project(project, levels, isolation):
    project.isolation = levels[0]
    project.save()
    ProjectChroot.objects.filter(project=project, chroot__name=X86).update(isolation=levels[1])
    build = queued_build(
        project,
        source_state=State.SUCCEEDED,
        chroot_states=[(X86, State.PENDING)],
        isolation=levels[2],
    )
    assert get(f"/backend/get-build-task/{build.pk}-{X86}/").json()["isolation"] == isolation


@pytest.mark.parametrize(
    ("project_bootstrap", "chroot_bootstrap", "build_bootstrap", "expected"),
    [
        ("default", "unchanged", "unchanged", {}),
        ("on", "unchanged", "unchanged", {"bootstrap": "on"}),
        ("on", "off", "unchanged", {"bootstrap": "off"}),
        ("on", "off", "image", {"bootstrap": "image"}),
        ("on", "off", "default", {}),  # the builder's mock configuration decides
        ("off", "custom_image", "unchanged", {"bootstrap": "custom_image", "bootstrap_image": "i"}),
        ("off", "custom_image", "on", {"bootstrap": "on"}),
    ],
)
def test_build_bootstrap_overrides_chroot_and_project(
    project, project_bootstrap, chroot_bootstrap, build_bootstrap, expected
):
    project.bootstrap = project_bootstrap
    project.save()
    ProjectChroot.objects.filter(project=project, chroot__name=X86).update(
        bootstrap=chroot_bootstrap, bootstrap_image="i"
    )
    build = queued_build(
        project,
        source_state=State.SUCCEEDED,
        chroot_states=[(X86, State.PENDING)],
        bootstrap=build_bootstrap,
    )
    record = get(f"/backend/get-build-task/{build.pk}-{X86}/").json()
    shown = {key: record[key] for key in ("bootstrap", "bootstrap_image") if key in record}
    assert shown == expected


def test_get_build_task_null_for_eol_chroot_and_404_for_unknown(project):
    build = queued_build(
        project, source_state=State.SUCCEEDED, chroot_states=[(X86, State.PENDING)]
    )
    Chroot.objects.filter(name=X86).update(is_active=False, end_of_life=True)
    eol = get(f"/backend/get-build-task/{build.pk}-{X86}")
    assert eol.status_code == 200 and eol.content == b"null"
    missing = get(f"/backend/get-build-task/{build.pk}-{ARM}/")
    assert missing.status_code == 404
    assert missing.json() == {"msg": f"Build task {build.pk}-{ARM} does not exist."}


def test_backend_endpoints_are_read_only(project):
    response = Client().post("/backend/pending-jobs/")
    assert response.status_code == 405
