"""Dramatiq actors for builds: thin, take ids, harmless when run twice."""

import dramatiq
from django.conf import settings

from apps.builds import announce, execution, rpm_uploads, scheduler

# A build may run up to MAX_BUILD_TIMEOUT; the runner enforces that itself, so the actor's
# limit is only a backstop above it.
RUN_TASK_LIMIT_MS = (settings.MAX_BUILD_TIMEOUT + 3600) * 1000


@dramatiq.actor(queue_name="builds", max_retries=0, time_limit=60_000)
def schedule_tasks() -> None:
    """Hand pending tasks to free builder slots."""
    scheduler.schedule_pending_tasks()


@dramatiq.actor(queue_name="builds", max_retries=0, time_limit=RUN_TASK_LIMIT_MS)
def run_task(task_id: int) -> None:
    """Run one claimed task; build failures are the user's and are never retried."""
    execution.task_run(task_id=task_id)


# While the bus is down or refuses messages, retry for about a day: Dramatiq's backoff doubles
# from 10 s up to 15 min, jittered to 7.5-15 min, so 130 retries span some 24 hours. An
# announcement is delayed, not lost, by an outage shorter than that, and never fails or holds
# up a build (only this actor waits for the bus).
@dramatiq.actor(
    queue_name="default",
    max_retries=130,
    min_backoff=10_000,
    max_backoff=15 * 60_000,
    time_limit=60_000,
)
def announce_task(topic: str, body: dict) -> None:
    """Publish one of Copr's build messages on the fedora-messaging bus.

    Unlike other actors it carries the message, not an id: it tells what happened then (the
    task's state and builder at its start or end), which the row no longer says later.
    """
    announce.message_publish(topic=topic, body=body)


@dramatiq.actor(queue_name="builds", max_retries=3, time_limit=1800_000)
def place_uploaded_rpm(build_id: int) -> None:
    """Fetch an uploaded binary RPM from the web role into its tasks' results (uploadrpm)."""
    rpm_uploads.rpm_upload_place(build_id=build_id)
