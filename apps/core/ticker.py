"""A thread in every worker process that sends the outbox and nudges the reconcile actor."""

import contextlib
import logging
import threading
import time

import dramatiq
from django.conf import settings
from django.db import connections

from apps.core.tempfiles import worker_temp_sweep

logger = logging.getLogger(__name__)
_started = threading.Event()


def start_reconcile_ticker() -> None:
    """Every RECONCILE_SECONDS, send what the outbox holds, then `reconcile` (once per process).

    Dramatiq has no scheduler of its own; the reconcile actor is idempotent and cheap, so
    several processes ticking at once is harmless. The outbox is drained here, in the
    ticker's own thread, because a message cannot reach an actor while the broker is down.
    """
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_tick_forever, name="reconcile-ticker", daemon=True).start()


def _tick_forever() -> None:
    from apps.core.queue import actor_named, outbox_drain

    while True:
        time.sleep(settings.RECONCILE_SECONDS)
        try:
            outbox_drain()
        except Exception as error:  # a database hiccup must not end the ticker
            logger.warning("could not drain the outbox: %s", error)
        # This thread's own connection, closed after each use: between two ticks it would
        # only hold the database open (and a broken one is reopened next time).
        with contextlib.suppress(Exception):
            connections.close_all()
        try:
            # Plainly, not through the outbox: no transaction here, and a refused nudge needs
            # no row (the next tick sends another).
            actor_named("reconcile").send()
        except Exception:  # a broker hiccup must not end the ticker
            logger.exception("could not send the reconcile nudge")


class ReconcileTicker(dramatiq.Middleware):
    """Starts the ticker in each `rundramatiq` worker process, after sweeping what killed
    workers of this host left in WORKER_TEMP_DIR (reconcile may run on another host)."""

    def after_worker_boot(self, broker, worker):
        try:
            worker_temp_sweep()
        except Exception:  # a full or unwritable temp dir must not stop the worker
            logger.exception("could not sweep %s", settings.WORKER_TEMP_DIR)
        start_reconcile_ticker()
