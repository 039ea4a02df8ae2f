"""Resubmit on a build page and bulk delete on the builds list, role by role (issue 23)."""

import shutil

import pytest
from django.urls import reverse

from apps.builds.models import Build, State
from apps.builds.services import build_submit
from apps.builds.sources import job_source
from apps.core.errors import InvalidForm, ServiceError
from apps.projects.models import Project
from tests.builders.srpm_factory import make_srpm
from tests.factories import BuildFactory, BuildTaskFactory, chroot
from tests.web.conftest import ROLES, user_in_role

pytestmark = pytest.mark.django_db

CAN_EDIT = {"admin", "owner", "staff"}
CAN_BUILD = CAN_EDIT | {"builder"}


@pytest.fixture
def scm_build(personal_project) -> Build:
    build = BuildFactory(
        project=personal_project,
        source_type="scm",
        source_json={
            "type": "git",
            "clone_url": "https://example.org/hello.git",
            "committish": "main",
            "subdirectory": "",
            "spec": "hello.spec",
            "srpm_build_method": "rpkg",
        },
        requested_chroots=["fedora-43-x86_64"],
        timeout=3600,
    )
    BuildTaskFactory(build=build, chroot=chroot("fedora-43-x86_64"))
    return build


@pytest.mark.parametrize("role", ROLES)
def test_resubmit_is_offered_and_works_for_those_who_can_build(
    client_as, personal_project, scm_build, role
):
    client = client_as(user_in_role(role, personal_project))
    url = reverse("build-resubmit", args=[scm_build.pk])
    page = client.get(reverse("build-detail", args=[scm_build.pk])).content.decode()
    allowed = role in CAN_BUILD
    assert (url in page) == allowed
    response = client.post(url, {"chroots": ["fedora-43-x86_64"], "timeout": "7200"})
    if role == "anonymous":
        assert response.status_code == 302 and "/login" in response["Location"]
    else:
        assert response.status_code == (302 if allowed else 403)
    resubmitted = Build.objects.exclude(pk=scm_build.pk).first()
    assert (resubmitted is not None) == allowed
    if allowed:
        assert response["Location"] == reverse("build-detail", args=[resubmitted.pk])
        assert resubmitted.source_type == "scm"
        assert resubmitted.source_json == scm_build.source_json
        assert resubmitted.timeout == 7200
        assert resubmitted.requested_chroots == ["fedora-43-x86_64"]


def test_resubmit_form_starts_from_the_builds_options(client, alice, scm_build):
    client.force_login(alice)
    page = client.get(reverse("build-resubmit", args=[scm_build.pk])).content.decode()
    assert 'name="timeout" value="3600"' in page
    assert 'value="fedora-43-x86_64"' in page and "checked" in page


def test_resubmit_with_a_bad_option_says_why(client, alice, scm_build):
    client.force_login(alice)
    url = reverse("build-resubmit", args=[scm_build.pk])
    response = client.post(url, {"after_build_id": "999999"})
    assert response.status_code == 400
    assert "Build 999999 does not exist" in response.content.decode()
    assert Build.objects.count() == 1


def test_an_upload_build_is_not_resubmitted(client, alice, personal_project):
    build = BuildFactory(project=personal_project, source_type="upload", source_json={"pkg": "x"})
    client.force_login(alice)
    page = client.get(reverse("build-detail", args=[build.pk])).content.decode()
    assert reverse("build-resubmit", args=[build.pk]) not in page
    response = client.post(reverse("build-resubmit", args=[build.pk]), {})
    assert response.status_code == 409
    assert "submit the file again" in response.content.decode()


def test_an_upload_build_is_resubmitted_with_its_filed_srpm(
    client, alice, personal_project, settings, tmp_path
):
    srpm = make_srpm(tmp_path)
    build = BuildFactory(
        project=personal_project,
        source_type="upload",
        source_json={"pkg": srpm.name, "tmp": "00000001"},
    )
    build.srpm_url = f"alice/hello/srpm-builds/{build.pk:08d}/{srpm.name}"
    build.save(update_fields=["srpm_url"])
    client.force_login(alice)
    page = client.get(reverse("build-detail", args=[build.pk])).content.decode()
    assert reverse("build-resubmit", args=[build.pk]) in page

    # The web reads no results (they may be on another host): the new build names the file.
    response = client.post(reverse("build-resubmit", args=[build.pk]), {})

    assert response.status_code == 302, response.content.decode()[-1500:]
    resubmitted = Build.objects.exclude(pk=build.pk).get()
    assert resubmitted.source_type == "upload"
    assert resubmitted.source_json == {"pkg": srpm.name, "filed_srpm": build.srpm_url}
    # Its source task runs on the backend at once, with no builder, as an upload's does.
    (task,) = resubmitted.tasks.all()
    assert (task.state, task.builder_id) == (State.STARTING, None)
    with pytest.raises(ServiceError, match="no longer in the results"):
        job_source(resubmitted)
    filed = settings.RESULTS_ROOT / build.srpm_url
    filed.parent.mkdir(parents=True)
    shutil.copyfile(srpm, filed)
    assert job_source(resubmitted)["path"] == str(filed)


def test_a_client_cannot_name_a_filed_srpm_itself(alice, personal_project):
    """Only a resubmit names a results file: another project's SRPM is not a client's to take."""
    source_json = {"pkg": "x.src.rpm", "filed_srpm": "bob/secret/srpm-builds/00000001/x.src.rpm"}

    with pytest.raises(InvalidForm, match="needs the file itself"):
        build_submit(
            user=alice, project=personal_project, source_type="upload", source_json=source_json
        )

    assert not Build.objects.exists()


def two_finished_builds(project: Project) -> list[Build]:
    return [BuildFactory(project=project, state=State.SUCCEEDED) for _ in range(2)]


@pytest.mark.parametrize("role", ROLES)
def test_bulk_delete_is_offered_and_works_for_those_who_can_edit(client_as, personal_project, role):
    builds = two_finished_builds(personal_project)
    client = client_as(user_in_role(role, personal_project))
    list_url = reverse("build-list", args=["alice", "hello"])
    delete_url = reverse("build-delete-many", args=["alice", "hello"])
    page = client.get(list_url).content.decode()
    allowed = role in CAN_EDIT
    assert (delete_url in page) == allowed
    assert ('name="build_ids"' in page) == allowed
    response = client.post(delete_url, {"build_ids": [b.pk for b in builds]})
    if role == "anonymous":
        assert response.status_code == 302 and "/login" in response["Location"]
    else:
        assert response.status_code == (302 if allowed else 403)
    assert Build.objects.filter(pk__in=[b.pk for b in builds]).exists() != allowed


def test_bulk_delete_refuses_all_when_one_build_still_runs(client, alice, personal_project):
    finished = BuildFactory(project=personal_project, state=State.SUCCEEDED)
    running = BuildFactory(project=personal_project, state=State.RUNNING)
    client.force_login(alice)
    url = reverse("build-delete-many", args=["alice", "hello"])
    response = client.post(url, {"build_ids": [finished.pk, running.pk]})
    assert response.status_code == 400
    assert f"Builds {running.pk} are unfinished" in response.content.decode()
    assert Build.objects.count() == 2


def test_bulk_delete_of_a_build_in_another_project_is_refused(client, alice, personal_project):
    other = BuildFactory(state=State.SUCCEEDED)
    client.force_login(alice)
    url = reverse("build-delete-many", args=["alice", "hello"])
    response = client.post(url, {"build_ids": [other.pk]})
    assert response.status_code == 400
    assert Build.objects.filter(pk=other.pk).exists()
