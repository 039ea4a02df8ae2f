"""build_submit: nothing left behind when recording fails halfway; how source tasks start."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError

from apps.builds import services
from apps.builds.execution import task_run
from apps.builds.models import Build, BuildTask, State
from apps.builds.services import BuildOptions, build_submit
from apps.fleet.models import Builder
from apps.fleet.services import local_pool_ensure
from tests.builders.srpm_factory import make_srpm
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db


def test_failed_submit_keeps_no_rows_and_no_upload(tmp_path, settings, monkeypatch):
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    project = ProjectFactory()
    srpm = make_srpm(tmp_path)
    upload = SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm")

    def database_gives_up(**fields):
        raise IntegrityError("simulated failure after the upload was stored")

    # Fail the last write of the transaction, after the upload is already on disk.
    monkeypatch.setattr(services.BuildTask.objects, "create", database_gives_up)
    with pytest.raises(IntegrityError):
        build_submit(
            user=project.owner_user, project=project, source_type="upload", source_json={},
            upload=upload, options=BuildOptions(),
        )  # fmt: skip
    assert not Build.objects.exists()
    assert not any((tmp_path / "uploads").rglob("*.src.rpm"))


@pytest.fixture
def no_free_slot(settings, tmp_path):
    """Every builder slot is taken: only work that needs no builder can go on."""
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.RESULTS_ROOT = tmp_path / "results"
    Builder.objects.filter(pk=local_pool_ensure().pk).update(slots=0)


# Transactional: the task runs as a worker does, closing its connection when it ends.
@pytest.mark.django_db(transaction=True)
def test_uploaded_srpm_is_filed_without_waiting_for_a_builder_slot(tmp_path, no_free_slot):
    project = ProjectFactory()
    srpm = make_srpm(tmp_path)
    build = build_submit(
        user=project.owner_user, project=project, source_type="upload", source_json={},
        upload=SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm"),
    )  # fmt: skip
    source = BuildTask.objects.get(build=build, chroot=None)
    assert (source.state, source.builder_id) == (State.STARTING, None)

    task_run(task_id=source.pk)  # what the run_task message sent on commit does

    source.refresh_from_db()
    assert source.state == State.SUCCEEDED
    build.refresh_from_db()
    assert build.srpm_url.endswith(f"srpm-builds/{build.pk:08d}/hello-1.0-1.src.rpm")
    rpm_task = BuildTask.objects.get(build=build, chroot__isnull=False)
    assert rpm_task.state == State.PENDING  # the build itself waits for a slot


def test_url_source_task_waits_for_a_builder_slot(no_free_slot, settings):
    settings.SUBMIT_CHECK_URLS = False
    project = ProjectFactory()
    build = build_submit(
        user=project.owner_user, project=project, source_type="link",
        source_json={"url": "https://example.org/hello-1.0-1.src.rpm"},
    )  # fmt: skip
    source = BuildTask.objects.get(build=build, chroot=None)
    assert (source.state, source.builder_id) == (State.PENDING, None)
