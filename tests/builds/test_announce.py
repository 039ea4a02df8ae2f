"""Which task ends are announced on the bus, with what body; nothing at all while it is off.

The announcements wait in the outbox with the task's transaction (pytest-django's test
transaction never commits, so they stay there to be read). tests/e2e/test_bus_messages.py
sends real ones through RabbitMQ.
"""

import pytest
from copr_messaging import schema
from django.utils import timezone

from apps.builds.announce import message_body, task_announce_start
from apps.builds.lifecycle import task_end
from apps.builds.models import State
from apps.core.models import OutboxMessage
from tests.factories import BuildFactory, BuildTaskFactory

pytestmark = pytest.mark.django_db


def announced() -> list[tuple[str, dict]]:
    return [tuple(m.args) for m in OutboxMessage.objects.filter(actor_name="announce_task")]


def running_task(**build_fields):
    build = BuildFactory(state=State.RUNNING, **build_fields)
    return BuildTaskFactory(build=build, state=State.RUNNING, started_on=timezone.now())


@pytest.fixture
def bus_on(settings):
    settings.FEDORA_MESSAGING_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"
    return settings


def test_nothing_is_announced_while_no_bus_is_configured(settings):
    settings.FEDORA_MESSAGING_URL = settings.FEDORA_MESSAGING_CONF = ""
    task = running_task()
    task_announce_start(task_id=task.pk)
    task_end(task=task, state=State.FAILED, reason="x")
    assert announced() == []


def test_a_task_that_ran_is_announced_ending_with_coprs_status_number(bus_on):
    task = running_task()
    task_end(task=task, state=State.FAILED, reason="build failed")
    ((topic, body),) = announced()
    assert topic == "build.end"
    assert body["status"] == 0 and body["chroot"] == task.chroot.name
    assert body["build"] == task.build_id and body["pkg"] == "hello"
    schema.BuildChrootEndedV1(body=body).validate()


def test_tasks_no_worker_ran_end_unannounced(bus_on):
    never_started = BuildTaskFactory(build=BuildFactory(), state=State.PENDING)
    task_end(task=never_started, state=State.CANCELED, reason="canceled")
    uploaded = running_task(source_type="rpm_upload")
    task_end(task=uploaded, state=State.SUCCEEDED)
    assert announced() == []


def test_a_source_task_starts_as_srpm_builds_without_a_package_yet(bus_on):
    build = BuildFactory(state=State.RUNNING, package_name="", package_version="")
    task = BuildTaskFactory(build=build, chroot=None, state=State.RUNNING)
    task_announce_start(task_id=task.pk)
    assert [topic for topic, _ in announced()] == ["build.start", "chroot.start"]
    body = message_body(task, "build.start", State.RUNNING)
    assert body["chroot"] == "srpm-builds" and body["pkg"] is None and body["version"] is None
    assert body["status"] == 3 and body["user"] == build.submitter.username
    assert body["what"].startswith(f"build start: user:{body['user']} copr:{body['copr']}")
    schema.BuildChrootStartedV1(body=body).validate()
    schema.BuildChrootStartedV1DontUse(body=body).validate()
