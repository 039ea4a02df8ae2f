"""Reconcile: tasks of dead workers go back to the queue; built-but-unsigned ones get signed."""

from datetime import timedelta

import dramatiq
import pytest
from django.utils import timezone
from dramatiq.brokers.stub import StubBroker

from apps.builds.models import BuildTask, State
from apps.builds.services import tasks_reconcile
from apps.fleet.services import local_pool_ensure
from tests.factories import BuildTaskFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker():
    stub = dramatiq.get_broker()
    stub.flush_all()
    yield stub
    stub.flush_all()


def stale_running_task(**fields) -> BuildTask:
    return BuildTaskFactory(
        state=State.RUNNING,
        heartbeat_on=timezone.now() - timedelta(hours=1),
        **fields,
    )


def queued_actor_names(broker, queue: str) -> list[str]:
    return [dramatiq.Message.decode(raw).actor_name for raw in list(broker.queues[queue].queue)]


@pytest.mark.skipif(
    not isinstance(dramatiq.get_broker(), StubBroker),
    reason="inspects the StubBroker's in-memory queues",
)
def test_unsigned_task_is_signed_not_rebuilt(broker):
    task = stale_running_task(builder=None, result_files=["hello-1.0-1.fc43.x86_64.rpm"])
    tasks_reconcile()
    task.refresh_from_db()
    assert task.state == State.RUNNING and task.attempt == 0
    assert "publish_task" in queued_actor_names(broker, "sign")


def test_task_of_dead_worker_is_queued_again(broker, settings):
    settings.MAX_TASK_ATTEMPTS = 2
    task = stale_running_task(builder=local_pool_ensure())
    tasks_reconcile()
    task.refresh_from_db()
    assert task.state == State.PENDING and task.attempt == 1 and task.builder is None
    assert "builder lost" in task.state_reason


def test_fresh_heartbeat_is_left_alone(broker):
    task = BuildTaskFactory(
        state=State.RUNNING, heartbeat_on=timezone.now(), builder=local_pool_ensure()
    )
    tasks_reconcile()
    task.refresh_from_db()
    assert task.state == State.RUNNING and task.attempt == 0
