"""Keep one command running: restart it with backoff when it dies, stop it on request."""

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Sequence

logger = logging.getLogger(__name__)
# A child that ran this long was healthy: its next restart starts from the first delay again.
HEALTHY_RUN_SECONDS = 60.0
FIRST_RESTART_DELAY = 1.0
MAX_RESTART_DELAY = 60.0
# Dramatiq's exit statuses that no restart can cure: bad arguments or a module that does
# not import (2), a pid file held by another process (4). A broker that is down (3) is
# worth retrying.
HOPELESS_EXIT_CODES = frozenset({2, 4})
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
STOPPING_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})


class Supervisor:
    """Runs `command`, restarting it whenever it exits unasked, until a stop signal.

    Dramatiq's master process ends as soon as any of its worker processes dies (it shuts
    the others down and exits), and nothing starts it again: one OOM-killed build would
    take every queue of the host offline. The delay between restarts doubles while the
    child keeps dying young, so a broker outage does not become a fork storm.
    """

    def __init__(self, command: Sequence[str], *, env: dict[str, str] | None = None) -> None:
        self.command = list(command)
        self.env = env
        self.stopping = threading.Event()
        self.child: subprocess.Popen | None = None

    def run(self) -> int:
        """Supervise until asked to stop; returns the last child's exit status."""
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, self._forward)
        delay = FIRST_RESTART_DELAY
        while True:
            started = time.monotonic()
            self.child = subprocess.Popen(self.command, env=self.env)
            if self.stopping.is_set():  # asked to stop before the child could be told
                self.child.terminate()
            status = self.child.wait()
            if self.stopping.is_set():
                return status
            if status in HOPELESS_EXIT_CODES:
                logger.error("worker exited with status %s: not restarting it", status)
                return status
            if time.monotonic() - started >= HEALTHY_RUN_SECONDS:
                delay = FIRST_RESTART_DELAY
            logger.warning("worker exited with status %s; restarting in %.0f s", status, delay)
            if self.stopping.wait(delay):
                return status
            delay = min(delay * 2, MAX_RESTART_DELAY)

    def _forward(self, signum: int, _frame) -> None:
        if signum in STOPPING_SIGNALS:
            self.stopping.set()
        # SIGHUP is dramatiq's "reload": passed on, and the supervisor carries on.
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)
