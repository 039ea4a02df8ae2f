"""build_submit leaves nothing behind when recording the build fails halfway."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError

from apps.builds import services
from apps.builds.models import Build
from apps.builds.services import BuildOptions, build_submit
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
