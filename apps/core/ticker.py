"""A thread in every worker process that nudges the periodic reconcile actor."""

import logging
import threading
import time

import dramatiq
from django.conf import settings

logger = logging.getLogger(__name__)
_started = threading.Event()


def start_reconcile_ticker() -> None:
    """Send `reconcile` every RECONCILE_SECONDS from this process (once per process).

    Dramatiq has no scheduler of its own; the reconcile actor is idempotent and cheap, so
    several processes ticking at once is harmless.
    """
    if _started.is_set():
        return
    _started.set()
    threading.Thread(target=_tick_forever, name="reconcile-ticker", daemon=True).start()


def _tick_forever() -> None:
    from apps.builds.actors import reconcile

    while True:
        time.sleep(settings.RECONCILE_SECONDS)
        try:
            reconcile.send()
        except Exception:  # a broker hiccup must not end the ticker
            logger.exception("could not send the reconcile nudge")


class ReconcileTicker(dramatiq.Middleware):
    """Starts the ticker in each `rundramatiq` worker process."""

    def after_worker_boot(self, broker, worker):
        start_reconcile_ticker()
