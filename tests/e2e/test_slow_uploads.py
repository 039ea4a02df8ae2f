"""Slow uploads against gunicorn with gunicorn.conf.py, without nginx: bodies are trickled over
real sockets; a late body gets 408 and a user's uploads past UPLOADS_PER_USER get 429."""

import base64
import contextlib
import select
import socket
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.processes import RedisServer, Service

pytestmark = pytest.mark.e2e

UPLOAD = "/api_3/build/create/upload"
DECLARED = 400 * 1024 * 1024
# Small values so each case takes seconds: 1 s of grace, then 1000 bytes/s, 8 s in all.
SETTINGS = {
    "REQUEST_BODY_GRACE_SECONDS": 1,
    "REQUEST_BODY_MIN_RATE": 1000,
    "REQUEST_BODY_TIMEOUT": 8,
    "UPLOADS_PER_USER": 2,
}
FILE_PART_START = (
    b"--xyz\r\n"
    b'Content-Disposition: form-data; name="pkgs"; filename="big-1-1.src.rpm"\r\n'
    b"Content-Type: application/x-rpm\r\n\r\n"
)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    """gunicorn (two processes, so the upload count must be shared) and a user `alice`.

    gunicorn needs a broker that answers (production never runs on the in-memory one)."""
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    running = Service(tmp_path_factory.mktemp("slow") / "var", redis.url, **SETTINGS)
    login, token = running.prepare("alice")
    running.start_web(workers=2, threads=4)
    running.authorization = "Basic " + base64.b64encode(f"{login}:{token}".encode()).decode()
    yield running
    running.stop()
    redis.stop()


def upload_at(service, bytes_per_second: float, *, seconds: float = 15) -> tuple[int, str, float]:
    """Declare a 400 MB upload and send its body at `bytes_per_second` until the server
    answers (or `seconds` pass); (status, answer, seconds until the answer)."""
    head = (
        f"POST {UPLOAD} HTTP/1.1\r\nHost: 127.0.0.1:{service.port}\r\n"
        f"Authorization: {service.authorization}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {DECLARED}\r\n\r\n"
    )
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as conn:
        conn.sendall(head.encode() + FILE_PART_START)
        owed = 0.0
        while time.monotonic() - started < seconds:
            readable, _, _ = select.select([conn], [], [], 0.1)
            if readable:
                received = read_answer(conn)
                status = int(received.split()[1]) if received else 0
                return status, received.decode(errors="replace"), time.monotonic() - started
            owed += bytes_per_second * 0.1
            if owed >= 1:
                # OSError: the server stopped reading; its answer is still to be read.
                with contextlib.suppress(OSError):
                    conn.sendall(b"x" * int(owed))
                owed -= int(owed)
    return 0, "", time.monotonic() - started


def read_answer(conn: socket.socket) -> bytes:
    received = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return received
        if not chunk:
            return received
        received += chunk
        head, separator, body = received.partition(b"\r\n\r\n")
        lengths = [line for line in head.lower().split(b"\r\n") if line.startswith(b"content-")]
        lengths = [int(line.split(b":")[1]) for line in lengths if b"length" in line]
        if separator and lengths and len(body) >= lengths[0]:
            return received


def wait_for_slots(service, count: int) -> bool:
    """Whether `count` uploads hold a slot within 5 s (read from the service's database)."""
    database = sqlite3.connect(service.var_dir / "coprsite.sqlite3")
    try:
        for _ in range(50):
            if database.execute("SELECT count(*) FROM accounts_uploadslot").fetchone()[0] >= count:
                return True
            time.sleep(0.1)
        return False
    finally:
        database.close()


def test_a_body_trickled_at_one_byte_a_second_is_cut_off_after_the_grace(service) -> None:
    status, answer, seconds = upload_at(service, 1)

    assert status == 408, answer
    assert "The request body came too slowly" in answer
    assert "after the first 1 s it must arrive at 1000 bytes/s or faster" in answer
    # The grace, the watchdog's quarter second, and room for a loaded machine.
    assert 1 <= seconds < 4


def test_a_body_fast_enough_but_too_long_is_cut_off_at_the_deadline(service) -> None:
    status, answer, seconds = upload_at(service, 3000)

    assert status == 408, answer
    assert "the whole body must arrive within 8 s" in answer
    assert 8 <= seconds < 11


def test_a_user_has_at_most_two_uploads_in_flight(service) -> None:
    with ThreadPoolExecutor(2) as pool:
        # Two uploads that keep up the rate: in flight until the 8 s deadline.
        first = [pool.submit(upload_at, service, 3000) for _ in range(2)]
        slots_taken = wait_for_slots(service, 2)
        status, answer, seconds = upload_at(service, 3000)
        results = [future.result() for future in first]

    assert slots_taken
    assert status == 429, (answer, results)
    assert "Retry-After: 30" in answer
    assert "You already have 2 uploads in progress" in answer
    assert seconds < 2
    assert [result[0] for result in results] == [408, 408]
    # Their slots are free again: the next upload is read (and cut off for being slow).
    assert upload_at(service, 1)[0] == 408
