"""A cancel pushed to the workers running the build, so its sandbox stops within a second.

The running task's `TaskWatch` registers an event here; `build_cancel` announces the
cancel, which sets the events of that build:
- in the same process (the embedded worker) right after the cancel commits;
- in every worker process on PostgreSQL through `NOTIFY` in the cancel's transaction
  (delivered at commit, never for a rolled back cancel), which one listener thread per
  worker process receives on a connection of its own.
The database poll of `TaskWatch` stays as the fallback: a lost notification (a listener
reconnecting, another broker setup) only makes a cancel as slow as the poll.
"""

import logging
import threading
import time

import psycopg
from django.conf import settings
from django.db import connection, transaction

logger = logging.getLogger(__name__)
CHANNEL = "coprsite_build_cancel"
RECONNECT_SECONDS = 1
IDLE_CHECK_SECONDS = 1  # how soon a listener with nothing left to watch closes its connection

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
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [CHANNEL, str(build_id)])


def wake(build_id: int) -> None:
    with _lock:
        events = list(_watches.get(build_id, ()))
    for event in events:
        event.set()


def listener_ensure() -> None:
    """Start this process's listener thread on PostgreSQL, unless it runs already."""
    global _listener
    if connection.vendor != "postgresql":
        return
    with _lock:
        if _listener is None:
            _listener = threading.Thread(target=_listen_while_watched, name="cancel-listener")
            _listener.daemon = True
            _listener.start()


def _listen_while_watched() -> None:
    """Listen while some task of this process runs; then close the connection and end."""
    global _listener
    while True:
        try:
            _listen()
        except psycopg.Error:
            logger.warning("cancel listener lost its connection; reconnecting", exc_info=True)
            time.sleep(RECONNECT_SECONDS)
        with _lock:
            if not _watches:
                _listener = None
                return


def _listen() -> None:
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
