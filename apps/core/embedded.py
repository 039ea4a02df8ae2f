"""The embedded in-process Dramatiq worker, so one process runs the whole service."""

import logging
import threading

import dramatiq
from django.conf import settings

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_worker: dramatiq.Worker | None = None


def start_embedded_worker(*, threads: int = 4) -> dramatiq.Worker:
    """Start (once per process) a worker consuming the configured broker in this process."""
    global _worker
    with _lock:
        if _worker is None:
            broker = dramatiq.get_broker()
            _worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
            _worker.start()
            logger.info("embedded worker started on %s", type(broker).__name__)
        return _worker


def uses_embedded_broker() -> bool:
    return not settings.BROKER_URL
