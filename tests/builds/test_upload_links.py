"""Uploads travel to the backend over HTTP: signed, expiring links that name one build's file,
refused with a clear message when forged or expired, and the upload removed at the web
role's end once the source task has ended."""

import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core import signing
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from apps.builds import execution, services, upload_links
from apps.builds.logs import task_result_dir
from apps.builds.models import BuildTask, State
from apps.builds.rpm_uploads import build_upload_rpm, rpm_upload_place
from apps.builds.services import build_submit, stale_tasks_reconcile
from apps.builds.sources import store_hook_payload, upload_dir
from apps.builds.upload_links import (
    FETCH_SALT,
    RELEASE_SALT,
    UploadFetchFailed,
    link_token,
    upload_fetch,
)
from tests.builders.srpm_factory import make_binary_rpm, make_srpm
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def roots(settings, tmp_path):
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.RESULTS_ROOT = tmp_path / "results"


@pytest.fixture
def srpm(tmp_path):
    return make_srpm(tmp_path)


def submit_upload(srpm):
    project = ProjectFactory()
    return build_submit(
        user=project.owner_user, project=project, source_type="upload", source_json={},
        upload=SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm"),
    )  # fmt: skip


def fetch_path(build_id: int, name: str, *, salt: str = FETCH_SALT) -> str:
    return reverse("upload-fetch", args=[link_token(build_id, name, salt=salt)])


def release_path(build_id: int, *, salt: str = RELEASE_SALT) -> str:
    return reverse("upload-release", args=[link_token(build_id, "", salt=salt)])


def test_a_signed_link_serves_that_builds_file(client, srpm):
    build = submit_upload(srpm)
    response = client.get(fetch_path(build.pk, srpm.name))
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == srpm.read_bytes()


def test_an_expired_link_is_refused_with_a_message(client, srpm, settings, monkeypatch):
    build = submit_upload(srpm)
    path = fetch_path(build.pk, srpm.name)
    later = time.time() + settings.UPLOAD_LINK_SECONDS + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    response = client.get(path)
    assert response.status_code == 403
    assert "expired" in response.content.decode()


@pytest.mark.parametrize(
    "forge",
    [
        lambda token: token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB"),
        # Signed with another key: what a host with a different SECRET_KEY would send.
        lambda token: signing.TimestampSigner(key="not-the-key", salt=FETCH_SALT).sign_object(
            {"build": 1, "file": "x.src.rpm"}
        ),
    ],
    ids=["altered", "other-key"],
)
def test_a_forged_link_is_refused_with_a_message(client, srpm, forge):
    build = submit_upload(srpm)
    token = link_token(build.pk, srpm.name, salt=FETCH_SALT)
    response = client.get(reverse("upload-fetch", args=[forge(token)]))
    assert response.status_code == 403
    assert "signature does not match" in response.content.decode()
    assert "SECRET_KEY" in response.content.decode()


def test_a_release_link_does_not_fetch_and_a_fetch_link_does_not_release(client, srpm):
    build = submit_upload(srpm)
    assert client.get(fetch_path(build.pk, srpm.name, salt=RELEASE_SALT)).status_code == 403
    assert client.post(release_path(build.pk, salt=FETCH_SALT)).status_code == 403
    assert (upload_dir(build.pk) / srpm.name).is_file()


@pytest.mark.parametrize("name", ["../secret_key", "", "other.src.rpm", "a/b.src.rpm"])
def test_a_link_serves_nothing_but_a_stored_file_of_its_build(client, srpm, name):
    build = submit_upload(srpm)
    (upload_dir(build.pk).parent / "secret_key").write_text("no")
    response = client.get(fetch_path(build.pk, name))
    assert response.status_code == 404
    assert f"Build {build.pk} has no stored file" in response.content.decode()


def test_release_removes_the_upload_only_once_the_source_task_ended(client, srpm):
    build = submit_upload(srpm)
    response = client.post(release_path(build.pk))
    assert response.status_code == 409
    assert "still runs" in response.content.decode()
    assert (upload_dir(build.pk) / srpm.name).is_file()

    BuildTask.objects.filter(build=build, chroot=None).update(state=State.SUCCEEDED)
    assert client.post(release_path(build.pk)).status_code == 204
    assert not upload_dir(build.pk).exists()
    assert client.get(fetch_path(build.pk, srpm.name)).status_code == 404


def test_fetch_over_http_reports_a_refusal(settings, live_server, srpm, tmp_path, monkeypatch):
    settings.WEB_INTERNAL_URL = live_server.url
    build = submit_upload(srpm)

    def signed_with_another_key(build_id, name, *, salt):
        signer = signing.TimestampSigner(key="a backend with another key", salt=salt)
        return signer.sign_object({"build": build_id, "file": name})

    monkeypatch.setattr(upload_links, "link_token", signed_with_another_key)
    with pytest.raises(UploadFetchFailed, match="HTTP 403.*SECRET_KEY"):
        upload_fetch(build, srpm.name, into=tmp_path)


@pytest.mark.django_db(transaction=True)
def test_the_source_task_fetches_the_upload_over_http_and_the_web_removes_it(
    settings, live_server, srpm, tmp_path, monkeypatch
):
    """The backend's side reads the upload only through the link, into its own directory;
    when the task has ended, the web role removes its copy at the backend's word."""
    settings.WEB_INTERNAL_URL = live_server.url
    build = submit_upload(srpm)
    task = BuildTask.objects.get(build=build, chroot=None)
    seen = []
    real_job_spec = execution.job_spec

    def recording_job_spec(task, result_dir, *, inputs=None):
        spec = real_job_spec(task, result_dir, inputs=inputs)
        seen.append(spec.source["path"])
        return spec

    monkeypatch.setattr(execution, "job_spec", recording_job_spec)
    execution.task_run(task_id=task.pk)

    task.refresh_from_db()
    assert task.state == State.SUCCEEDED, task.state_reason
    assert len(seen) == 1
    assert not seen[0].startswith(str(settings.UPLOADS_ROOT))
    assert not upload_dir(build.pk).exists()
    assert not Path(seen[0]).exists()  # the backend's copy went with the task


@pytest.mark.django_db(transaction=True)
def test_an_upload_the_web_no_longer_has_fails_the_source_task_with_a_reason(
    settings, live_server, srpm
):
    settings.WEB_INTERNAL_URL = live_server.url
    build = submit_upload(srpm)
    task = BuildTask.objects.get(build=build, chroot=None)
    (upload_dir(build.pk) / srpm.name).unlink()

    execution.task_run(task_id=task.pk)

    task.refresh_from_db()
    assert task.state == State.FAILED
    assert "is gone from the web role" in task.state_reason


# --- copr-cli uploadrpm: the backend places the RPM it fetched from the web ---------------


@pytest.fixture
def binary_rpm(tmp_path):
    return make_binary_rpm(tmp_path)


def upload_rpm(rpm):
    project = ProjectFactory(chroot_names=["fedora-43-x86_64"])
    return build_upload_rpm(
        user=project.owner_user,
        project=project,
        upload=SimpleUploadedFile(rpm.name, rpm.read_bytes(), "application/x-rpm"),
    )


@pytest.mark.django_db(transaction=True)
def test_an_uploaded_rpm_reaches_the_results_over_http(settings, live_server, binary_rpm):
    settings.WEB_INTERNAL_URL = live_server.url
    build = upload_rpm(binary_rpm)
    task = BuildTask.objects.get(build=build)
    assert task.result_files == []  # waits for the backend

    rpm_upload_place(build_id=build.pk)

    task.refresh_from_db()
    assert task.result_files == [binary_rpm.name]
    placed = task_result_dir(task) / binary_rpm.name
    assert placed.read_bytes() == binary_rpm.read_bytes()
    assert not upload_dir(build.pk).exists()  # the web removed it at the backend's word


def test_an_rpm_the_web_cannot_hand_over_waits_for_reconcile(settings, binary_rpm, monkeypatch):
    settings.WEB_INTERNAL_URL = "http://127.0.0.1:9"  # nothing listens: the web is down
    build = upload_rpm(binary_rpm)
    task = BuildTask.objects.get(build=build)
    monkeypatch.setattr(upload_links.time, "sleep", lambda seconds: None)
    rpm_upload_place(build_id=build.pk)
    task.refresh_from_db()
    assert task.state == State.RUNNING and task.result_files == []
    assert (upload_dir(build.pk) / binary_rpm.name).is_file()

    # Past its lease, reconcile asks for the placing again; it never rebuilds the task.
    BuildTask.objects.filter(pk=task.pk).update(heartbeat_on=timezone.now() - timedelta(days=1))
    sent = []
    monkeypatch.setattr(services, "send_on_commit", lambda actor, *args: sent.append((actor, args)))
    stale_tasks_reconcile()
    assert ("place_uploaded_rpm", (build.pk,)) in sent
    task.refresh_from_db()
    assert task.state == State.RUNNING and task.attempt == 0


def test_an_rpm_gone_from_the_web_fails_its_tasks(binary_rpm):
    build = upload_rpm(binary_rpm)
    (upload_dir(build.pk) / binary_rpm.name).unlink()
    rpm_upload_place(build_id=build.pk)
    task = BuildTask.objects.get(build=build)
    assert task.state == State.FAILED
    assert "is gone from the web role" in task.state_reason


@pytest.mark.django_db(transaction=True)
def test_a_custom_webhook_payload_reaches_the_script_over_http(settings, live_server, tmp_path):
    settings.WEB_INTERNAL_URL = live_server.url
    build = BuildFactory(
        source_type="custom",
        source_json={
            "script": "#!/bin/sh\ntrue\n",
            "chroot": "fedora-43-x86_64",
            "hook_data": True,
        },
        state=State.PENDING,
    )
    task = BuildTaskFactory(build=build, chroot=None, state=State.RUNNING)
    store_hook_payload(build.pk, b"payload!")
    inputs = tmp_path / "inputs"
    inputs.mkdir()

    spec = execution.job_spec(task, tmp_path / "results", inputs=inputs)

    payload = Path(spec.source["hook_payload_path"])
    assert payload.parent == inputs  # the backend's own copy, not the web's UPLOADS_ROOT
    assert payload.read_bytes() == b"payload!"
