"""A cancel pushed to the workers running the build, so its sandbox stops within a second.

The running task's `TaskWatch` registers an event here; `build_cancel` announces the
cancel, which sets the events of that build:
- in the same process (the embedded worker) right after the cancel commits;
- in every worker process on PostgreSQL through `NOTIFY` in the cancel's transaction
  (delivered at commit, never for a rolled back cancel), which one listener thread per
  worker process receives on a connection of its own;
- in every worker process on another database with a Redis broker through a Redis
  `PUBLISH` after the commit, which the listener thread receives by `SUBSCRIBE`.
PostgreSQL's channel wins when both exist, since it is part of the transaction.
The database poll of `TaskWatch` stays as the fallback: a lost notification (a listener
reconnecting, Redis down at the moment of the cancel, a RabbitMQ broker on SQLite) only
makes a cancel as slow as the poll.
"""

import logging
import threading
import time

import psycopg
import redis
from django.conf import settings
from django.db import connection, transaction

logger = logging.getLogger(__name__)
CHANNEL = "coprsite_build_cancel"
RECONNECT_SECONDS = 1
IDLE_CHECK_SECONDS = 1  # how soon a listener with nothing left to watch closes its connection
REDIS_TIMEOUT_SECONDS = 2

_lock = threading.Lock()
_watches: dict[int, set[threading.Event]] = {}
_listener: threading.Thread | None = None
listening = threading.Event()  # set while this process's listener receives notifications


def watch_register(build_id: int, event: threading.Event) -> None:
    """Set `event` when build `build_id` is canceled, until `watch_unregister`."""
    with _lock:
        _watches.setdefault(build_id, set()).add(event)
    listener_ensure()


def watch_unregister(build_id: int, event: threading.Event) -> None:
    with _lock:
        events = _watches.get(build_id, set())
        events.discard(event)
        if not events:
            _watches.pop(build_id, None)


def cancel_announce(build_id: int) -> None:
    """Tell the workers, once the current transaction commits, that the build is canceled."""
    transaction.on_commit(lambda: wake(build_id))
    channel = push_channel()
    if channel == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(build_id)])
    elif channel == "redis":
        transaction.on_commit(lambda: _redis_publish(build_id))


def push_channel() -> str | None:
    """How a cancel reaches other processes: "postgresql", "redis", or None (the poll only)."""
    if connection.vendor == "postgresql":
        return "postgresql"
    if settings.BROKER_URL.startswith(("redis://", "rediss://")):
        return "redis"
    return None


def _redis_publish(build_id: int) -> None:
    # After the commit: a failure here must not fail the cancel, which the poll still finds.
    try:
        with _redis_client() as client:
            client.publish(CHANNEL, str(build_id))
    except redis.RedisError:
        logger.warning("cancel of build %s not pushed through Redis", build_id, exc_info=True)


def _redis_client() -> redis.Redis:
    # Short timeouts: a cancel request must not hang on a Redis that does not answer.
    return redis.Redis.from_url(
        settings.BROKER_URL, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
        socket_timeout=REDIS_TIMEOUT_SECONDS,
    )  # fmt: skip


def wake(build_id: int) -> None:
    with _lock:
        events = list(_watches.get(build_id, ()))
    for event in events:
        event.set()


def listener_ensure() -> None:
    """Start this process's listener thread for the push channel, unless it runs already."""
    global _listener
    listen = {"postgresql": _listen_postgresql, "redis": _listen_redis}.get(push_channel())
    if listen is None:
        return
    with _lock:
        if _listener is None:
            _listener = threading.Thread(
                target=_listen_while_watched, args=(listen,), name="cancel-listener"
            )
            _listener.daemon = True
            _listener.start()


def _listen_while_watched(listen) -> None:
    """Listen while some task of this process runs; then close the connection and end."""
    global _listener
    while True:
        try:
            listen()
        except (psycopg.Error, redis.RedisError):
            logger.warning("cancel listener lost its connection; reconnecting", exc_info=True)
            time.sleep(RECONNECT_SECONDS)
        with _lock:
            if not _watches:
                _listener = None
                return


def _listen_postgresql() -> None:
    """Receive notifications until no task of this process is watched any more."""
    database = settings.DATABASES["default"]
    params = {
        "dbname": database["NAME"],
        "user": database.get("USER") or None,
        "password": database.get("PASSWORD") or None,
        "host": database.get("HOST") or None,
        "port": database.get("PORT") or None,
    }
    params = {key: value for key, value in params.items() if value is not None}
    with psycopg.connect(**params, autocommit=True) as listening_connection:
        listening_connection.execute(f"LISTEN {CHANNEL}")
        listening.set()
        try:
            while _watches:
                for notification in listening_connection.notifies(timeout=IDLE_CHECK_SECONDS):
                    if notification.payload.isdigit():
                        wake(int(notification.payload))
        finally:
            listening.clear()


def _listen_redis() -> None:
    """Receive published cancels until no task of this process is watched any more."""
    with _redis_client() as client, client.pubsub() as subscription:
        subscription.subscribe(CHANNEL)
        # Listening only once Redis confirmed the subscription: a cancel published from
        # then on is received.
        while subscription.get_message(timeout=REDIS_TIMEOUT_SECONDS) is None:
            if not _watches:
                return
        listening.set()
        try:
            while _watches:
                message = subscription.get_message(
                    ignore_subscribe_messages=True, timeout=IDLE_CHECK_SECONDS
                )
                if message and message["data"].isdigit():
                    wake(int(message["data"]))
        finally:
            listening.clear()
