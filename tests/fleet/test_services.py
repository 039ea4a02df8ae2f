"""apps/fleet/services.py: a builder's "last seen" follows its running tasks' heartbeats."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.builds import execution
from apps.builds.execution import TaskWatch
from apps.builds.models import State
from apps.fleet.models import Builder
from apps.fleet.services import local_pool_ensure
from tests.factories import BuildTaskFactory


# Transactional: the watch thread has its own database connection.
@pytest.mark.django_db(transaction=True)
def test_last_seen_moves_while_a_task_runs(monkeypatch):
    monkeypatch.setattr(execution, "POLL_DATABASE_SECONDS", 0.05)
    builder = local_pool_ensure()
    long_ago = timezone.now() - timedelta(hours=1)
    Builder.objects.filter(pk=builder.pk).update(last_seen_on=long_ago)
    task = BuildTaskFactory(state=State.RUNNING, builder=builder)
    with TaskWatch(task):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            builder.refresh_from_db()
            if builder.last_seen_on > long_ago:
                break
            time.sleep(0.05)
    assert timezone.now() - builder.last_seen_on < timedelta(seconds=10)
