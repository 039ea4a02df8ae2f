"""Bound how long a request body may take to arrive: a minimum average rate and a deadline.

Without nginx in front, gunicorn hands the client's socket to a thread, and that thread is
busy while Django reads the body: a client trickling a byte a second holds it for days.
`BodyDeadline` wraps the WSGI application; it gives Django a `wsgi.input` that checks,
between the pieces it reads, that the body came at least at REQUEST_BODY_MIN_RATE on
average after REQUEST_BODY_GRACE_SECONDS and is complete within REQUEST_BODY_TIMEOUT. A
watchdog thread enforces the same while a read is blocked in the socket, by shutting the
socket's reading side; the client is answered 408 and the connection is closed.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time

from django.conf import settings
from django.core.exceptions import BadRequest

# Each read of the wrapped input asks the server for about a second's worth of body at the
# minimum rate, so the progress a check sees is at most that far behind what has arrived
# (bytes that arrive inside one read only count when it returns).
MIN_PIECE_BYTES = 1024
MAX_PIECE_BYTES = 64 * 1024
# How often the watchdog looks at the bodies being read; a late body is cut this late.
WATCH_SECONDS = 0.25


class BodyTimeout(BadRequest):
    """The body came too slowly; BadRequest so that Django answers it without a traceback."""


class DeadlineInput:
    """`wsgi.input` that stops a body arriving too slowly (see the module docstring)."""

    def __init__(
        self,
        stream,
        *,
        length: int,
        client: socket.socket | None,
        min_rate: int,
        grace: float,
        timeout: float,
    ) -> None:
        self.stream = stream
        self.length = length
        self.client = client
        self.min_rate = min_rate
        self.grace = grace
        self.timeout = timeout
        # Only the time spent waiting in reads counts: a view that works a while before it
        # reads the body (a lock, a slow query) does not make its client late.
        self.waited = 0.0
        self.reading_since: float | None = None
        self.received = 0
        self.piece = min(max(min_rate, MIN_PIECE_BYTES), MAX_PIECE_BYTES)
        self.late: str | None = None  # why the body was cut off, once it was

    def read(self, size: int = -1) -> bytes:
        wanted = self.length - self.received if size is None or size < 0 else size
        pieces = []
        while wanted > 0:
            piece = self.waiting(self.stream.read, min(wanted, self.piece))
            if not piece:
                break
            wanted -= len(piece)
            pieces.append(piece)
        return b"".join(pieces)

    def readline(self, size: int = -1) -> bytes:
        return self.waiting(
            self.stream.readline, min(size, self.piece) if size and size > 0 else self.piece
        )

    def waiting(self, read, size: int) -> bytes:
        """One read from the server, timed; BodyTimeout when the body is late."""
        self.check()
        started = self.reading_since = time.monotonic()
        try:
            data = read(size)
        finally:
            # In this order the watchdog never counts the read twice.
            self.reading_since = None
            self.waited += time.monotonic() - started
        self.received += len(data)
        self.check()  # a watchdog cut ends the read early, with fewer bytes
        return data

    def complete(self) -> bool:
        return self.received >= self.length

    def overdue(self, now: float) -> str | None:
        """Why the body is late at `now`, or None."""
        if self.complete():
            return None
        since = self.reading_since
        elapsed = self.waited + (now - since if since is not None else 0.0)
        if elapsed > self.timeout:
            return f"the whole body must arrive within {self.timeout:g} s"
        if elapsed > self.grace and self.received < self.min_rate * elapsed:
            return (
                f"after the first {self.grace:g} s it must arrive at {self.min_rate} bytes/s "
                "or faster on average"
            )
        return None

    def check(self) -> None:
        if self.late is None:
            self.late = self.overdue(time.monotonic())
        if self.late is not None:
            self.cut()
            raise BodyTimeout(self.message())

    def cut(self) -> None:
        """Stop waiting for the client: a read blocked on the socket returns at once."""
        if self.client is not None:
            with contextlib.suppress(OSError):
                self.client.shutdown(socket.SHUT_RD)

    def message(self) -> str:
        seconds = self.waited
        return (
            f"The request body came too slowly: {self.received} of {self.length} bytes in "
            f"{seconds:.0f} s; {self.late}. Send it again over a faster connection."
        )


class Watchdog:
    """One thread per process that cuts off the bodies that became late while being read."""

    def __init__(self) -> None:
        self.bodies: set[DeadlineInput] = set()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def watch(self, body: DeadlineInput) -> None:
        with self.lock:
            self.bodies.add(body)
            if self.thread is None or not self.thread.is_alive():
                # Started on first use: gunicorn forks its workers after importing the app.
                self.thread = threading.Thread(target=self.run, name="body-deadline", daemon=True)
                self.thread.start()

    def forget(self, body: DeadlineInput) -> None:
        with self.lock:
            self.bodies.discard(body)

    def run(self) -> None:
        while True:
            time.sleep(WATCH_SECONDS)
            now = time.monotonic()
            with self.lock:
                bodies = list(self.bodies)
            for body in bodies:
                if body.late is None:
                    body.late = body.overdue(now)
                    if body.late is not None:
                        body.cut()


WATCHDOG = Watchdog()


class BodyDeadline:
    """WSGI middleware: every request body is read through a DeadlineInput.

    A late body makes the application fail while it reads; whatever it answered then is
    replaced by a 408 that says why, and the connection is closed.
    """

    def __init__(self, application) -> None:
        self.application = application

    def __call__(self, environ, start_response):
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0  # Django's body guard answers it
        if length <= 0:
            return self.application(environ, start_response)
        body = DeadlineInput(
            environ["wsgi.input"],
            length=length,
            client=environ.get("gunicorn.socket"),
            min_rate=settings.REQUEST_BODY_MIN_RATE,
            grace=settings.REQUEST_BODY_GRACE_SECONDS,
            timeout=settings.REQUEST_BODY_TIMEOUT,
        )
        environ["wsgi.input"] = body
        answer: list = []
        WATCHDOG.watch(body)
        response = None
        try:
            response = self.application(environ, lambda *args: answer.append(args))
        except Exception:
            if body.late is None:
                raise
            # Failing to answer a client that is gone is not the application's error.
        finally:
            WATCHDOG.forget(body)
        if body.late is None:
            start_response(*answer[0])
            return response if body.complete() else Finish(response, body)
        with contextlib.suppress(Exception):
            response.close()
        message = body.message().encode()
        start_response(
            "408 Request Timeout",
            [
                ("Content-Type", "text/plain; charset=utf-8"),
                ("Content-Length", str(len(message))),
                ("Connection", "close"),
            ],
        )
        return [message]


class Finish:
    """The application's response, then: a body it did not read is never read at all.

    gunicorn drains what is left of an unread body before it reuses the connection, a read
    that a client trickling bytes keeps going for as long as it likes; once the answer is
    written, shutting the reading side ends that at once (gunicorn itself gives up after
    64 KiB of an unread body, so a client sending it in full loses nothing it had).
    """

    def __init__(self, response, body: DeadlineInput) -> None:
        self.response = response
        self.body = body

    def __iter__(self):
        return iter(self.response)

    def close(self) -> None:
        try:
            if hasattr(self.response, "close"):
                self.response.close()
        finally:
            if not self.body.complete():
                self.body.cut()
