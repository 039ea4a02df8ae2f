"""The embedded in-process Dramatiq worker, so one process runs the whole service."""

import logging
import threading

import dramatiq
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from apps.core.ticker import start_reconcile_ticker
from coprsite.broker import missing_broker_message

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_worker: dramatiq.Worker | None = None


def start_embedded_worker() -> dramatiq.Worker:
    """Start (once per process) a worker consuming the configured broker in this process."""
    global _worker
    with _lock:
        if _worker is None:
            broker = dramatiq.get_broker()
            # Each running build holds a thread for its whole duration; the extra threads keep
            # scheduling, publishing and reconciling going while every slot is busy.
            threads = settings.LOCAL_BUILDER_SLOTS + 4
            _worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
            _worker.start()
            start_reconcile_ticker()
            logger.info("embedded worker started on %s", type(broker).__name__)
        return _worker


def uses_embedded_broker() -> bool:
    return not settings.BROKER_URL


def refuse_stub_broker_without_worker(process: str) -> None:
    """Stop a process that would send to the in-memory StubBroker with no worker to read it.

    Under `manage.py runserver` (`make run`) the embedded worker starts before the WSGI
    application loads; under gunicorn or any other server nothing would ever run a build.
    """
    if uses_embedded_broker() and _worker is None:
        raise ImproperlyConfigured(missing_broker_message(process))
