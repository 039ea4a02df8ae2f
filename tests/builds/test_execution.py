"""Tests for apps/builds/execution.py: what the job spec tells the runner; slots hand on."""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.builds.execution import job_spec, task_run
from apps.builds.models import BuildTask, State
from apps.builds.scheduler import schedule_pending_tasks
from apps.builds.services import build_submit
from apps.fleet.models import Builder, BuilderPool, BuilderState, BuilderStateChange, PoolKind
from apps.fleet.services import builder_drain, builder_resume, local_pool_ensure, ssh_pool_sync
from apps.projects.models import ProjectChroot
from builders.limits import ResourceLimits
from builders.transports import JobLeft, ssh
from tests.builders.srpm_factory import make_srpm
from tests.builds.test_scheduler import pending_task
from tests.factories import BuildFactory, BuildTaskFactory, ProjectFactory, chroot
from tests.queues import queued_actor_names

pytestmark = pytest.mark.django_db


@pytest.fixture
def limit_settings(settings):
    settings.BUILD_LIMIT_PROCESSES = 300
    settings.BUILD_LIMIT_MEMORY_MIB = 2048
    settings.BUILD_LIMIT_CPU_SECONDS = 7200
    settings.BUILD_LIMIT_DISK_MIB = 4096
    settings.BUILD_LIMIT_CPU_PERCENT = 150
    return settings


def test_rpm_and_source_tasks_get_the_default_limits(limit_settings, tmp_path) -> None:
    rpm_task = BuildTaskFactory()
    source_task = BuildTaskFactory(build=rpm_task.build, chroot=None)
    expected = {
        "processes": 300,
        "memory_mib": 2048,
        "cpu_seconds": 7200,
        "disk_mib": 4096,
        "cpu_percent": 150,
    }

    rpm_spec = job_spec(rpm_task, tmp_path)
    source_spec = job_spec(source_task, tmp_path)

    assert rpm_spec.limits == expected
    assert source_spec.limits == expected
    # What the runner reads back from the JSON it is sent.
    assert ResourceLimits.from_dict(type(rpm_spec).from_json(rpm_spec.to_json()).limits) == (
        ResourceLimits(
            processes=300, memory_mib=2048, cpu_seconds=7200, disk_mib=4096, cpu_percent=150
        )
    )


def test_the_builder_pool_overrides_some_limits(limit_settings, tmp_path) -> None:
    pool = BuilderPool.objects.create(
        name="small",
        arches=["x86_64"],
        limit_memory_mib=512,
        limit_cpu_seconds=0,
        limit_cpu_percent=50,
    )
    builder = Builder.objects.create(pool=pool, name="small-1", arches=["x86_64"])
    task = BuildTaskFactory(builder=builder)

    spec = job_spec(task, tmp_path)

    # 0 means "no limit" for the pool's jobs; empty fields keep the settings.
    assert spec.limits == {
        "processes": 300,
        "memory_mib": 512,
        "cpu_seconds": 0,
        "disk_mib": 4096,
        "cpu_percent": 50,
    }


def test_an_rpm_job_carries_its_chroots_mock_settings_and_the_builds_own(tmp_path) -> None:
    project = ProjectFactory(chroot_names=["fedora-43-x86_64"], module_hotfixes=True)
    ProjectChroot.objects.filter(project=project).update(
        additional_packages=["make"], bootstrap="on", with_opts=["docs"]
    )
    build = BuildFactory(project=project, isolation="simple", bootstrap="unchanged")
    task = BuildTaskFactory(build=build, chroot=chroot("fedora-43-x86_64"))

    spec = job_spec(task, tmp_path)

    config = type(spec).from_json(spec.to_json()).build_config
    assert (config["isolation"], config["bootstrap"]) == ("simple", "on")
    assert config["buildroot_pkgs"] == ["make"] and config["with_opts"] == ["docs"]
    assert config["repos"][0]["id"] == "copr_base"
    assert config["repos"][0]["module_hotfixes"] is True


def submitted_upload(project, srpm: Path) -> BuildTask:
    """A build of an uploaded SRPM whose source task has run: its RPM task is pending."""
    build = build_submit(
        user=project.owner_user, project=project, source_type="upload", source_json={},
        upload=SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm"),
    )  # fmt: skip
    task_run(task_id=BuildTask.objects.get(build=build, chroot=None).pk)
    return BuildTask.objects.get(build=build, chroot__isnull=False, state=State.PENDING)


@pytest.fixture
def two_tasks_for_one_slot(tmp_path, settings) -> tuple[BuildTask, BuildTask]:
    """Two pending RPM tasks and a builder of one slot, handed the first of them."""
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.RESULTS_ROOT = tmp_path / "results"
    builder = local_pool_ensure()
    Builder.objects.filter(pk=builder.pk).update(slots=1, arches=["x86_64"])
    project = ProjectFactory()
    srpm = make_srpm(tmp_path)
    first, second = (submitted_upload(project, srpm) for _ in range(2))
    assert schedule_pending_tasks() == [first.pk]  # one slot: the second task waits
    first.refresh_from_db()
    return first, second


# Transactional: the tasks run as a worker runs them, closing connections as it goes.
@pytest.mark.django_db(transaction=True)
def test_a_freed_slot_runs_the_next_task_without_a_message(stub_broker, two_tasks_for_one_slot):
    first, second = two_tasks_for_one_slot
    stub_broker.flush_all()  # what submitting and scheduling sent

    task_run(task_id=first.pk)  # what the run_task message of the first task does

    for task in (first, second):
        task.refresh_from_db()
        # Built on the slot and handed to signing (publish_task), which is not run here.
        assert (task.state, task.builder_id) == (State.RUNNING, None)
        assert any(name.endswith(".x86_64.rpm") for name in task.result_files)
    assert second.started_on >= first.started_on
    # Neither a scheduler nudge nor a run_task message stood between the two builds; once
    # the builder has nothing left, one nudge lets other builders look at the queue.
    assert queued_actor_names(stub_broker, "builds") == ["schedule_tasks"]


@pytest.mark.django_db(transaction=True)
def test_a_slot_hands_on_nothing_when_its_builder_is_drained(two_tasks_for_one_slot):
    first, second = two_tasks_for_one_slot
    Builder.objects.filter(pk=first.builder_id).update(state=BuilderState.DRAINING)

    task_run(task_id=first.pk)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.result_files  # the running build finishes on the draining builder
    assert (second.state, second.builder_id) == (State.PENDING, None)


@pytest.mark.django_db(transaction=True)
def test_a_running_task_whose_build_is_deleted_is_stopped(monkeypatch):
    """A project deleted under a running build: its sandbox stops, as for a cancel."""
    from apps.builds import execution

    monkeypatch.setattr(execution, "POLL_DATABASE_SECONDS", 0.05)
    task = BuildTaskFactory(state=State.RUNNING)
    with execution.TaskWatch(task) as watch:
        assert not watch.canceled.wait(0.3), "a build that is still there runs on"
        task.build.delete()
        assert watch.canceled.wait(5), "the deleted build kept running"


@pytest.mark.django_db(transaction=True)
def test_each_attempt_keeps_its_builder_and_duration_and_builders_their_history(
    ssh_hosts, tmp_path, settings, monkeypatch, client, staff_user
):
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.RESULTS_ROOT = tmp_path / "results"
    monkeypatch.setattr(ssh, "RETRY_PAUSE_SECONDS", 0)
    local = local_pool_ensure()
    Builder.objects.filter(pk=local.pk).update(slots=1, arches=["x86_64"])
    task = submitted_upload(ProjectFactory(), make_srpm(tmp_path))
    # The first attempt goes to an SSH host that is away: the builder is lost.
    (host,) = ssh_hosts(1)
    host.kill_everything()
    pool = BuilderPool.objects.create(
        name="ssh", kind=PoolKind.SSH, arches=["x86_64"],
        config={"hosts": [host.pool_host_config()]},
    )  # fmt: skip
    (remote,) = ssh_pool_sync(pool=pool)
    builder_drain(builder_ids=[local.pk], user=staff_user)
    assert schedule_pending_tasks() == [task.pk]
    task_run(task_id=task.pk)
    # The second one runs on the local builder, back in service.
    builder_resume(builder_ids=[local.pk], user=staff_user)
    assert schedule_pending_tasks() == [task.pk]
    task_run(task_id=task.pk)

    task.refresh_from_db()
    assert (task.state, task.builder_id, task.attempt) == (State.RUNNING, None, 1)
    assert task.result_files  # built: only signing is left
    attempts = list(task.attempts.all())
    assert [(a.number, a.builder_name) for a in attempts] == [(1, "ssh-host0"), (2, local.name)]
    assert attempts[0].outcome.startswith("builder lost: builder ssh-host0: ssh failed")
    assert attempts[1].outcome == "succeeded"
    assert all(a.ended_on >= a.started_on for a in attempts)
    page = client.get(reverse("build-detail", args=[task.build_id])).content.decode()
    assert "1. ssh-host0 · 0 s · builder lost" in page or "1. ssh-host0 · 1 s" in page
    assert f"2. {local.name} · " in page and " · succeeded</p>" in page

    history = [
        (change.builder.name, change.previous_state, change.state, change.reason)
        for change in BuilderStateChange.objects.order_by("pk")
    ]
    assert history[0] == (local.name, "ready", "draining", f"drained by {staff_user.username}")
    assert history[1][:3] == ("ssh-host0", "ready", "down")
    assert "Connection refused" in history[1][3]
    assert history[2] == (
        local.name, "draining", "ready", f"put back in service by {staff_user.username}"
    )  # fmt: skip
    anonymous = client.get(reverse("status-builders")).content.decode()
    assert 'draining → <span class="state state-ready">ready</span>' in anonymous
    assert "Connection refused" not in anonymous  # reasons may quote hosts and keys
    client.force_login(staff_user)
    staff = client.get(reverse("status-builders")).content.decode()
    assert "Connection refused" in staff
    console = client.get(reverse("admin:fleet_builder_change", args=[remote.pk]))
    assert "state history" in console.content.decode().lower()
    assert "Connection refused" in console.content.decode()
    task_page = client.get(reverse("admin:builds_buildtask_change", args=[task.pk]))
    assert "ssh-host0" in task_page.content.decode()  # its first attempt's builder


@pytest.mark.django_db(transaction=True)
def test_a_task_that_meets_a_host_of_another_arch_waits_for_another_builder_attempts_kept(
    ssh_hosts, tmp_path, settings
):
    settings.RESULTS_ROOT = tmp_path / "results"
    local_pool_ensure()
    BuilderPool.objects.filter(kind=PoolKind.LOCAL).update(enabled=False)
    (host,) = ssh_hosts(1)  # x86_64, declared aarch64
    pool = BuilderPool.objects.create(
        name="arm", kind=PoolKind.SSH, arches=["aarch64"],
        config={"hosts": [host.pool_host_config(arches=["aarch64"])]},
    )  # fmt: skip
    (builder,) = ssh_pool_sync(pool=pool)
    task = pending_task(ProjectFactory(), chroot_name="fedora-43-aarch64")
    assert schedule_pending_tasks() == [task.pk]  # not probed yet: it looks ready

    task_run(task_id=task.pk)

    task.refresh_from_db()
    builder.refresh_from_db()
    assert (task.state, task.attempt, task.builder_id) == (State.PENDING, 0, None)
    assert builder.state == BuilderState.DOWN
    assert "declared for aarch64 but is x86_64" in builder.state_reason
    assert task.attempts.get().outcome.startswith("builder lost: builder arm-host0 is declared")
    assert schedule_pending_tasks() == []  # it gets nothing more


@pytest.mark.django_db(transaction=True)
def test_a_worker_whose_lease_went_to_another_leaves_the_detached_job(monkeypatch):
    """Reconcile took this worker for dead: it stops following the job, which runs on."""
    from apps.builds import execution

    monkeypatch.setattr(execution, "POLL_DATABASE_SECONDS", 0.05)
    task = BuildTaskFactory(state=State.RUNNING, lease_token="mine")
    with execution.TaskWatch(task, detached=True) as watch:
        assert not watch.left.wait(0.3) and not watch.should_cancel()
        BuildTask.objects.filter(pk=task.pk).update(lease_token="another")
        assert watch.left.wait(5)
        with pytest.raises(JobLeft):
            watch.should_cancel()
