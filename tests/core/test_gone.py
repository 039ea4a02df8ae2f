"""Work on a row deleted under it ends quietly; the same errors about a live row still raise."""

import logging

import pytest
from django.db import IntegrityError

from apps.core.gone import Gone, quiet_when_gone
from apps.projects.models import Project
from apps.repos.models import SigningKey
from apps.repos.services import project_key_ensure
from apps.workflows.projects import project_delete
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_foreign_key_error_about_a_deleted_project_ends_with_an_info_line(caplog):
    caplog.set_level(logging.INFO)
    project = ProjectFactory()
    project_id = project.pk
    Project.objects.filter(pk=project_id).delete()
    with quiet_when_gone(f"project {project_id}", Project.objects.filter(pk=project_id).exists):
        SigningKey.objects.create(project_id=project_id)
    assert [r.levelname for r in caplog.records if r.name == "apps.core.gone"] == ["INFO"]
    assert "was deleted while its work ran" in caplog.text


def test_the_same_error_about_a_row_that_still_exists_raises():
    project = ProjectFactory()
    SigningKey.objects.create(project=project)
    with (
        pytest.raises(IntegrityError),
        quiet_when_gone(f"project {project.pk}", Project.objects.filter(pk=project.pk).exists),
    ):
        SigningKey.objects.create(project=project)  # one key per project: a real bug here


def test_a_missing_file_of_a_live_row_raises():
    project = ProjectFactory()
    with (
        pytest.raises(FileNotFoundError),
        quiet_when_gone(f"project {project.pk}", Project.objects.filter(pk=project.pk).exists),
    ):
        open("/nonexistent/coprsite/file")  # noqa: SIM115 - the error is the point


def test_key_made_for_a_project_deleted_meanwhile_writes_no_row_and_no_directory(
    settings, tmp_path
):
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.RESULTS_ROOT = tmp_path / "results"
    project = ProjectFactory()
    project_delete(user=project.owner_user, project=Project.objects.get(pk=project.pk))
    # `project` is what the actor loaded before the delete; the key takes seconds to make.
    with pytest.raises(Gone):
        project_key_ensure(project=project)
    assert not SigningKey.objects.exists()
    assert not (tmp_path / "results" / project.ownername / project.name).exists()
