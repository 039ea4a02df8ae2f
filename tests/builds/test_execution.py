"""Tests for apps/builds/execution.py: what the job spec tells the runner."""

import pytest

from apps.builds.execution import job_spec
from apps.fleet.models import Builder, BuilderPool
from builders.limits import ResourceLimits
from tests.factories import BuildTaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def limit_settings(settings):
    settings.BUILD_LIMIT_PROCESSES = 300
    settings.BUILD_LIMIT_MEMORY_MIB = 2048
    settings.BUILD_LIMIT_CPU_SECONDS = 7200
    settings.BUILD_LIMIT_DISK_MIB = 4096
    return settings


def test_rpm_and_source_tasks_get_the_default_limits(limit_settings, tmp_path) -> None:
    rpm_task = BuildTaskFactory()
    source_task = BuildTaskFactory(build=rpm_task.build, chroot=None)
    expected = {"processes": 300, "memory_mib": 2048, "cpu_seconds": 7200, "disk_mib": 4096}

    rpm_spec = job_spec(rpm_task, tmp_path)
    source_spec = job_spec(source_task, tmp_path)

    assert rpm_spec.limits == expected
    assert source_spec.limits == expected
    # What the runner reads back from the JSON it is sent.
    assert ResourceLimits.from_dict(type(rpm_spec).from_json(rpm_spec.to_json()).limits) == (
        ResourceLimits(processes=300, memory_mib=2048, cpu_seconds=7200, disk_mib=4096)
    )


def test_the_builder_pool_overrides_some_limits(limit_settings, tmp_path) -> None:
    pool = BuilderPool.objects.create(
        name="small", arches=["x86_64"], limit_memory_mib=512, limit_cpu_seconds=0
    )
    builder = Builder.objects.create(pool=pool, name="small-1", arches=["x86_64"])
    task = BuildTaskFactory(builder=builder)

    spec = job_spec(task, tmp_path)

    # 0 means "no limit" for the pool's jobs; empty fields keep the settings.
    assert spec.limits == {"processes": 300, "memory_mib": 512, "cpu_seconds": 0, "disk_mib": 4096}
