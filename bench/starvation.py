"""Starvation: the portal's latency while a fork-bomb build runs and while slow uploads trickle.

Runs the production setup as separate processes on loopback: gunicorn with gunicorn.conf.py
and its sizes, `manage.py rundramatiq` workers, and a redis-server of its own on a free
port. The database is SQLite in a fresh directory, or the empty database named by
--database-url (PostgreSQL; it is migrated). PROBES anonymous visitors load portal pages
and API lists one after another (a new connection each), and the p50/p95/max of their
answers is measured in three phases, each bounded in time:

1. idle: nothing else runs (--idle seconds).
2. fork bomb: a real build whose %build forks --bomb processes (as many as the process
   limit lets it) that each burn CPU for --burn seconds, under the default BUILD_LIMIT_*
   limits (the job's cgroup gives it a low CPU weight and a quota); the visitors are
   measured while it burns. Goal: p95 at most twice the idle p95. The build's `Limits:`
   log line and how many processes it forked are printed.
3. slow uploads: one user keeps UPLOADERS authenticated uploads in flight, each declaring
   400 MB and sending its body at 1 byte/s; one that is answered (408 too slow, 429 too
   many) is opened again a second later, for --slow seconds. Goal: the visitors' p95
   under 1 s.

    .venv/bin/python bench/starvation.py [--idle 15] [--bomb 1000] [--burn 40] [--slow 40]
        [--database-url URL]
"""

import argparse
import base64
import contextlib
import gzip
import re
import select
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.builders.srpm_factory import make_srpm  # noqa: E402
from tests.e2e.processes import CoprApi, RedisServer, Service  # noqa: E402

CHROOT = "fedora-43-x86_64"
PROBES = 4
PATHS = (
    "/",
    "/coprs/bench/starve/",
    "/api_3/project/list?ownername=bench",
    "/api_3/build/list?ownername=bench&projectname=starve",
)
UPLOADERS = 24
DECLARED = 400 * 1024 * 1024


def bomb_script(processes: int, seconds: float) -> str:
    """%build: up to `processes` processes that each spin for `seconds`, then the compile."""
    return (
        "python3 -c 'import os, time\n"
        f"end = time.time() + {seconds}\n"
        "forked = 0\n"
        f"for _ in range({processes}):\n"
        "    try:\n"
        "        child = os.fork()\n"
        "    except OSError:\n"
        "        break  # the process limit\n"
        "    if child == 0:\n"
        "        while time.time() < end: pass\n"
        "        os._exit(0)\n"
        "    forked += 1\n"
        'print("forked", forked)\n'
        "for _ in range(forked): os.wait()'\n"
        "gcc -o bomb hello.c"
    )


def probe(url: str, seconds: float) -> tuple[list[float], Counter]:
    """PROBES visitors loading PATHS in turn for `seconds`: latencies and answers."""
    latencies: list[float] = []
    answers: Counter = Counter()
    lock = threading.Lock()
    ends = time.monotonic() + seconds

    def visitor(number: int) -> None:
        index = number
        while time.monotonic() < ends:
            path = PATHS[index % len(PATHS)]
            index += 1
            started = time.monotonic()
            try:
                status = requests.get(url + path, timeout=60).status_code
            except requests.RequestException as error:
                status = type(error).__name__
            with lock:
                latencies.append(time.monotonic() - started)
                answers[status] += 1
            time.sleep(0.1)

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(PROBES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, answers


def summary(name: str, latencies: list[float], answers: Counter, extra: str = "") -> float:
    p95 = statistics.quantiles(latencies, n=100, method="inclusive")[94]
    print(
        f"{name}: {len(latencies)} requests, p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {p95 * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms "
        f"(answers {dict(sorted(answers.items(), key=str))}){extra}",
        flush=True,
    )
    return p95


def fork_bomb(service: Service, api: CoprApi, work: Path, args) -> tuple[list, Counter, str]:
    srpm = make_srpm(work, name="bomb", build_script=bomb_script(args.bomb, args.burn))
    response = api.upload("starve", srpm, [CHROOT])
    response.raise_for_status()
    build_id = response.json()["id"]
    ends = time.monotonic() + 120
    while time.monotonic() < ends:
        states = {b["id"]: b["state"] for b in api.builds("starve")}
        if states.get(build_id) == "running":
            break
        time.sleep(0.5)
    time.sleep(3)  # the sandbox starts, then the processes fork
    latencies, answers = probe(service.url, max(5.0, args.burn - 10))
    ends = time.monotonic() + args.burn + 120
    while time.monotonic() < ends:
        state = {b["id"]: b["state"] for b in api.builds("starve")}.get(build_id)
        if state in ("succeeded", "failed", "canceled"):
            break
        time.sleep(1)
    lines = [
        line.split("INFO: ", 1)[-1].strip()
        for log in service.var_dir.rglob(f"*/{CHROOT}/*-bomb/builder-live.log.gz")
        for line in gzip.decompress(log.read_bytes()).decode(errors="replace").splitlines()
        if "Limits:" in line or re.fullmatch(r"forked \d+", line)
    ]
    return latencies, answers, f"build {state}; " + "; ".join(lines)


def slow_upload(port: int, authorization: str, ends: float) -> str:
    """One upload trickled at 1 byte/s until answered or `ends`: the answer's status."""
    head = (
        f"POST /api_3/build/create/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: {authorization}\r\n"
        "Content-Type: multipart/form-data; boundary=xyz\r\n"
        f"Content-Length: {DECLARED}\r\n\r\n--xyz\r\n"
        'Content-Disposition: form-data; name="pkgs"; filename="big-1-1.src.rpm"\r\n'
        "Content-Type: application/x-rpm\r\n\r\n"
    )
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(head.encode())
            while time.monotonic() < ends:
                if select.select([conn], [], [], 1)[0]:
                    answer = conn.recv(64)
                    return answer.split()[1].decode() if answer else "closed"
                with contextlib.suppress(OSError):
                    conn.sendall(b"x")
    except OSError as error:
        return type(error).__name__
    return "still sending"


def slow_uploads(service: Service, authorization: str, args) -> tuple[list, Counter, Counter]:
    ends = time.monotonic() + args.slow
    outcomes: Counter = Counter()
    lock = threading.Lock()

    def uploader() -> None:
        while time.monotonic() < ends:
            outcome = slow_upload(service.port, authorization, ends)
            with lock:
                outcomes[outcome] += 1
            time.sleep(1)

    threads = [threading.Thread(target=uploader) for _ in range(UPLOADERS)]
    for thread in threads:
        thread.start()
    time.sleep(2)  # every upload has been answered or is trickling
    latencies, answers = probe(service.url, args.slow - 4)
    for thread in threads:
        thread.join()
    return latencies, answers, outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=15, help="seconds of the idle phase")
    parser.add_argument("--bomb", type=int, default=1000, help="processes the build forks")
    parser.add_argument("--burn", type=float, default=40, help="seconds the fork bomb burns")
    parser.add_argument("--slow", type=float, default=40, help="seconds of slow uploads")
    parser.add_argument("--database-url", default="", help="an empty database (PostgreSQL)")
    args = parser.parse_args()
    args.idle, args.burn, args.slow = (min(x, 300) for x in (args.idle, args.burn, args.slow))
    args.slow = max(args.slow, 10)
    args.bomb = min(args.bomb, 1000)

    work = Path(tempfile.mkdtemp(prefix="coprsite-starvation-"))
    redis = RedisServer(work / "redis")
    redis.start()
    service = Service(work / "var", redis.url, database_url=args.database_url)
    database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    try:
        login, token = service.prepare("bench")
        service.manage("collectstatic", "--noinput")  # the pages name hashed static files
        service.start_web(workers=None, threads=None)  # gunicorn.conf.py's sizes
        service.start_workers(processes=1, threads=4)
        api = CoprApi(service.url, "bench", (login, token))
        api.project_add("starve", [CHROOT])
        print(f"work dir {work}; {database}; gunicorn as gunicorn.conf.py sizes it; "
              f"{PROBES} visitors", flush=True)  # fmt: skip
        probe(service.url, 3)  # warm-up: every worker process has loaded its code
        idle = summary("idle", *probe(service.url, args.idle))
        latencies, answers, build = fork_bomb(service, api, work, args)
        bomb = summary("fork bomb", latencies, answers, f"; {build}")
        print(f"  fork bomb p95 / idle p95 = {bomb / idle:.1f} (goal: at most 2)", flush=True)
        authorization = "Basic " + base64.b64encode(f"{login}:{token}".encode()).decode()
        latencies, answers, outcomes = slow_uploads(service, authorization, args)
        slow = summary(
            f"{UPLOADERS} slow uploads of one user",
            latencies,
            answers,
            f"; uploads answered {dict(sorted(outcomes.items()))}",
        )
        print(f"  others' p95 during slow uploads {slow:.2f} s (goal: under 1 s)", flush=True)
    finally:
        service.stop()
        redis.stop()


if __name__ == "__main__":
    main()
