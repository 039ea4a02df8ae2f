"""Copr's build messages on the fedora-messaging AMQP bus, with copr-messaging's schema classes.

Copr's backend announces every task a worker takes: `build.start` and `chroot.start` when it
starts running, `build.end` when it ends (spec: "Messages on the bus"). Consumers (Packit's
service among them) validate them with copr-messaging's classes, so the bodies are Copr's.

The lifecycle records an announcement in the outbox with the task's own transaction
(`send_on_commit`), and the `announce_task` actor publishes it: a bus that is down or
refuses the message delays it (the actor retries for about a day) and never fails or holds
up the build. Off unless settings name a broker (FEDORA_MESSAGING_URL or _CONF).
"""

import logging
import os

from django.conf import settings

from apps.builds.models import SOURCE_DIR, BuildTask, State
from apps.builds.states import STATUS_NUMBERS
from apps.core.queue import send_on_commit

logger = logging.getLogger(__name__)

# The source type of copr-cli `uploadrpm` builds, which no worker runs.
UPLOADED_RPM_SOURCE = "rpm_upload"
# Copr names a source build's chroot so in its messages.
SOURCE_CHROOT = SOURCE_DIR
# Copr's `what` lines, field for field (backend/copr_backend/msgbus.py).
WHAT = {
    "build.start": "build start: user:{user} copr:{copr} pkg:{pkg} build:{build} ip:{ip} pid:{pid}",
    "chroot.start": "chroot start: chroot:{chroot} user:{user} copr:{copr} pkg:{pkg}"
    " build:{build} ip:{ip} pid:{pid}",
    "build.end": "build end: user:{user} copr:{copr} build:{build} pkg:{pkg} version:{version}"
    " ip:{ip} pid:{pid} status:{status}",
}
# A connection or confirmation that takes longer fails the attempt (the actor retries); while
# the bus is down, each attempt holds one worker thread at most this long.
PUBLISH_TIMEOUT_SECONDS = 10


def announcing() -> bool:
    """Whether the operator named a broker to announce builds on."""
    return bool(settings.FEDORA_MESSAGING_URL or settings.FEDORA_MESSAGING_CONF)


def task_announce_start(*, task_id: int) -> None:
    """`build.start` and `chroot.start` for a task that started running (after the commit)."""
    if announcing():
        task = _task_loaded(task_id)
        for topic in ("build.start", "chroot.start"):
            send_on_commit("announce_task", topic, message_body(task, topic, State.RUNNING))


def task_announce_end(*, task_id: int, state: str) -> None:
    """`build.end` for a task that ran and ended; tasks no worker took end unannounced."""
    if announcing():
        task = _task_loaded(task_id)
        # An uploaded RPM's task starts "running" without a worker (apps.builds.rpm_uploads).
        if task.started_on is not None and task.build.source_type != UPLOADED_RPM_SOURCE:
            send_on_commit("announce_task", "build.end", message_body(task, "build.end", state))


def message_body(task: BuildTask, topic: str, state: str) -> dict:
    """The body Copr's backend sends for this task (copr-messaging's v1 schema)."""
    build, project = task.build, task.build.project
    submitter = build.submitter.username if build.submitter_id else build.submitted_by
    builder = task.builder.hostname if task.builder_id else ""
    body = {
        "user": submitter or None,
        "copr": project.name,
        "owner": project.ownername,
        "pkg": build.package_name or None,
        "build": build.pk,
        "chroot": task.chroot.name if task.chroot_id else SOURCE_CHROOT,
        "version": build.package_version or None,
        "status": STATUS_NUMBERS[state],
        "ip": builder or None,
        # Copr names the worker process that drives the task.
        "who": f"backend.worker-{task.task_id}",
        "pid": os.getpid(),
    }
    body["what"] = WHAT[topic].format(**body)
    return body


def message_publish(*, topic: str, body: dict) -> None:
    """Publish one message as fedora-messaging does; its errors reach the actor, which retries.

    copr-messaging's class makes and validates the message, and fedora-messaging's own
    configuration (URL, TLS, client properties, topic prefix) and serialization (routing key,
    body, schema headers) go on the wire. The transport is a short pika connection with
    publisher confirms rather than fedora-messaging's Twisted publisher: that one keeps
    retrying in its reactor after the caller's timeout (a missing exchange makes it loop
    for good) and runs a reactor thread in every worker.
    """
    import pika
    from copr_messaging import schema
    from fedora_messaging import config, exceptions
    from fedora_messaging.twisted.service import _configure_tls_parameters

    classes = {
        "build.start": schema.BuildChrootStartedV1,
        "chroot.start": schema.BuildChrootStartedV1DontUse,
        "build.end": schema.BuildChrootEndedV1,
    }
    conf = _configured(config.conf)
    message = classes[topic](body=body)
    try:
        message.validate()
    except exceptions.ValidationError:
        # Our bug, not the bus's: sending it again would fail again.
        logger.exception("announce: %s message for build %s is not valid", topic, body["build"])
        return
    parameters = pika.URLParameters(conf["amqp_url"])
    if conf["amqp_url"].startswith("amqps"):
        _configure_tls_parameters(parameters)  # fedora-messaging's own TLS set-up
    if parameters.client_properties is None:
        parameters.client_properties = conf["client_properties"]
    parameters.socket_timeout = parameters.blocked_connection_timeout = PUBLISH_TIMEOUT_SECONDS
    exchange = settings.FEDORA_MESSAGING_EXCHANGE or conf["publish_exchange"]
    try:
        connection = pika.BlockingConnection(parameters)
        try:
            channel = connection.channel()
            channel.confirm_delivery()
            channel.basic_publish(
                exchange=exchange,
                routing_key=message._encoded_routing_key,
                body=message._encoded_body,
                properties=message._properties,
            )
        finally:
            if connection.is_open:
                connection.close()
    except pika.exceptions.AMQPError as error:  # down, refused, closed, not confirmed
        logger.warning(
            "announce: the bus did not take %s of build %s (%r); sent again later",
            topic,
            body["build"],
            error,
        )
        raise


def _configured(conf):
    """fedora-messaging's configuration: its TOML file, then what settings override."""
    if not conf.loaded:
        conf.load_config(settings.FEDORA_MESSAGING_CONF or None)
    if settings.FEDORA_MESSAGING_URL:
        conf["amqp_url"] = settings.FEDORA_MESSAGING_URL
    if settings.FEDORA_MESSAGING_TOPIC_PREFIX:
        conf["topic_prefix"] = settings.FEDORA_MESSAGING_TOPIC_PREFIX
    return conf


def _task_loaded(task_id: int) -> BuildTask:
    return BuildTask.objects.select_related(
        "build__project__owner_user",
        "build__project__owner_group",
        "build__submitter",
        "chroot",
        "builder",
    ).get(pk=task_id)
