"""What a finished source task leads to (apps/builds/services.py: source_task_finish)."""

import gzip
import shutil
from pathlib import Path

import pytest

from apps.builds.logs import task_result_dir
from apps.builds.models import State
from apps.builds.services import source_task_finish
from builders.protocol import JobResult
from tests.builders.srpm_factory import make_srpm
from tests.factories import BuildFactory, BuildTaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def results_root(settings, tmp_path):
    settings.RESULTS_ROOT = tmp_path / "results"


def finished_source_task(tmp_path, package_name: str):
    """A running source task whose builder returned an SRPM of that name."""
    build = BuildFactory(requested_chroots=["fedora-43-x86_64"])
    task = BuildTaskFactory(
        build=build, chroot=None, state=State.RUNNING, result_dir=f"srpm-builds/{build.pk:08d}"
    )
    result_dir = task_result_dir(task)
    result_dir.mkdir(parents=True)
    srpm = Path(shutil.copy(make_srpm(tmp_path, name=package_name), result_dir))
    result = JobResult(state=State.SUCCEEDED, srpm={"filename": srpm.name})
    source_task_finish(task=task, result=result, result_dir=result_dir)
    task.refresh_from_db()
    return task, result_dir


def test_a_too_long_package_name_is_in_backend_log_in_coprs_words(tmp_path):
    task, result_dir = finished_source_task(tmp_path, "p" * 101)
    assert task.state == State.FAILED
    assert "Too long package name" in task.state_reason
    with gzip.open(result_dir / "backend.log.gz", "rt") as log:
        assert "Too long package name" in log.read()
    assert not task.build.tasks.exclude(pk=task.pk).exists()
