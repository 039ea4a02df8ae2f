"""Reliability: builds submitted through a broker restart and through worker kills.

Runs the production setup as separate processes on loopback: gunicorn (gunicorn.conf.py),
`manage.py rundramatiq` workers, and a redis-server of its own on a free port. The
database is SQLite in a fresh directory, or the empty database named by --database-url
(PostgreSQL; it is migrated). Two experiments, each bounded in count and time:

1. broker restart: CLIENTS threads upload UPLOADS SRPMs through /api_3 (as copr-cli does);
   a third of the way in, Redis is stopped for OUTAGE seconds, then started again. A
   client retries an answer of 5xx or a dropped connection (up to twice), as a user would.
2. worker kills: KILL_BUILDS builds whose %build takes a few seconds are submitted, and a
   Dramatiq worker process is SIGKILLed KILLS/2 times at random moments; then, KILLS/2
   times, one more build is submitted and the worker that runs its createrepo_c is
   killed. When the whole worker exits, it is started again, as a service manager would.

For each it prints: tried (submissions), 5xx (answers), lost (accepted builds that did not
succeed, and submissions never accepted), stuck (accepted builds not finished by the
deadline), doubled (builds the client did not get an id for: duplicates of a retry),
and what is left in the outbox.

    .venv/bin/python bench/reliability.py [--uploads 30] [--kills 10] [--database-url URL]
"""

import argparse
import contextlib
import os
import random
import signal
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.builders.srpm_factory import make_srpm  # noqa: E402
from tests.e2e.processes import CoprApi, RedisServer, Service, descendants  # noqa: E402

CHROOT = "fedora-43-x86_64"
FINAL = ("succeeded", "failed", "canceled")
RETRIES = 2
# Short enough that a killed worker's task is retried within the experiment's deadline.
SERVICE_SETTINGS = {"RECONCILE_SECONDS": 2, "TASK_LEASE_SECONDS": 20, "MAX_TASK_ATTEMPTS": 3}


@dataclass
class Tally:
    tried: int = 0
    status: Counter = field(default_factory=Counter)
    accepted: list[int] = field(default_factory=list)
    never_accepted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def submit(self, api: CoprApi, project: str, srpm: Path) -> None:
        """One user's submission, retried after a 5xx or a dropped connection."""
        with self.lock:
            self.tried += 1
        for _ in range(1 + RETRIES):
            try:
                response = api.upload(project, srpm, [CHROOT])
            except requests.RequestException:
                self.count("connection error")
                time.sleep(1)
                continue
            self.count(response.status_code)
            if response.status_code < 300:
                with self.lock:
                    self.accepted.append(response.json()["id"])
                return
            if response.status_code < 500:
                break  # the user's mistake: retrying would not help
            time.sleep(1)
        with self.lock:
            self.never_accepted += 1

    def count(self, what) -> None:
        with self.lock:
            self.status[what] += 1

    def server_errors(self) -> int:
        return sum(n for code, n in self.status.items() if isinstance(code, int) and code >= 500)


def wait_final(api: CoprApi, project: str, ids: list[int], deadline: float) -> dict[int, str]:
    states: dict[int, str] = {}
    while True:
        with contextlib.suppress(requests.RequestException):
            states = {b["id"]: b["state"] for b in api.builds(project)}
        if all(states.get(i) in FINAL for i in ids) or time.monotonic() > deadline:
            return states
        time.sleep(2)


def report(name: str, tally: Tally, states: dict[int, str], outbox: int, extra: str = "") -> None:
    accepted = set(tally.accepted)
    lost = sum(states.get(i) in ("failed", "canceled") for i in accepted) + tally.never_accepted
    stuck = sum(states.get(i) not in FINAL for i in accepted)
    doubled = len(set(states) - accepted)
    answers = ", ".join(f"{code}: {n}" for code, n in sorted(tally.status.items(), key=str))
    print(
        f"{name}: tried {tally.tried}, lost {lost}, stuck {stuck}, doubled {doubled}, "
        f"5xx {tally.server_errors()} (answers {answers}); outbox left {outbox}{extra}",
        flush=True,
    )


def broker_restart(service, redis, api, work: Path, args) -> None:
    api.project_add("outage", [CHROOT])
    srpm = make_srpm(work, name="steady", auto_req_prov=False)
    tally = Tally()
    queue = list(range(args.uploads))
    queue_lock = threading.Lock()

    def client() -> None:
        while True:
            with queue_lock:
                if not queue:
                    return
                queue.pop()
            tally.submit(api, "outage", srpm)

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for thread in threads:
        thread.start()
    while tally.tried < args.uploads // 3 and any(t.is_alive() for t in threads):
        time.sleep(0.05)
    redis.stop()
    time.sleep(args.outage)
    redis.start()
    for thread in threads:
        thread.join()
    states = wait_final(api, "outage", tally.accepted, time.monotonic() + args.deadline)
    report("broker restart", tally, states, service.count("core.OutboxMessage"),
           f"; Redis down {args.outage} s")  # fmt: skip


def worker_kills(service, api, work: Path, args) -> None:
    api.project_add("kills", [CHROOT])
    srpm = make_srpm(work, name="sleeper", build_script="sleep 4; gcc -o sleeper hello.c")
    tally = Tally()
    for _ in range(args.kill_builds):
        tally.submit(api, "kills", srpm)
    supervisor = Supervisor(service)
    supervisor.start()
    chance = random.Random(args.seed)  # noqa: S311 (when to kill, not a secret)
    random_kills = createrepo_kills = 0
    ends = time.monotonic() + args.deadline
    # Half of the kills at random moments while the builds run...
    while random_kills < args.kills - args.kills // 2 and time.monotonic() < ends:
        time.sleep(chance.uniform(2, 6))
        children = service.worker_children()
        if children:
            signal_child(chance.choice(children))
            random_kills += 1
    # ...the other half while a worker runs createrepo_c for a new build: a lock it
    # holds must not freeze the repository.
    while createrepo_kills < args.kills // 2 and time.monotonic() < ends:
        tally.submit(api, "kills", srpm)
        target = createrepo_worker(service, seconds=60)
        if target:
            signal_child(target)
            createrepo_kills += 1
    states = wait_final(api, "kills", tally.accepted, time.monotonic() + args.deadline)
    supervisor.stop()
    report("worker kills", tally, states, service.count("core.OutboxMessage"),
           f"; {random_kills} worker processes killed at random, {createrepo_kills} during "
           f"createrepo_c; whole worker restarted {supervisor.restarts} times")  # fmt: skip


def createrepo_worker(service, *, seconds: float) -> int | None:
    """The worker process that runs createrepo_c now, waiting up to `seconds` for one."""
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        for worker in service.worker_children():
            for pid in descendants(worker, depth=3):
                with contextlib.suppress(OSError):
                    if Path(f"/proc/{pid}/comm").read_text().strip() == "createrepo_c":
                        return worker
        time.sleep(0.005)  # a small repository's createrepo_c takes a fraction of a second
    return None


class Supervisor(threading.Thread):
    """Starts the workers again whenever they have exited: systemd's Restart=always."""

    def __init__(self, service) -> None:
        super().__init__(daemon=True)
        self.service = service
        self.restarts = 0
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1):
            if not self.service.workers_alive():
                self.service.start_workers(processes=2, threads=4)
                self.restarts += 1

    def stop(self) -> None:
        self.stopped.set()
        self.join()


def signal_child(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=30)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--outage", type=float, default=5.0, help="seconds Redis stays down")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--kill-builds", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=300, help="seconds per wait")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--only", choices=("broker", "kills"), help="run one experiment")
    parser.add_argument("--database-url", default="", help="an empty database (PostgreSQL)")
    args = parser.parse_args()
    args.uploads = min(args.uploads, 500)
    args.kills = min(args.kills, 50)
    args.deadline = min(args.deadline, 1800)

    work = Path(tempfile.mkdtemp(prefix="coprsite-reliability-"))
    redis = RedisServer(work / "redis")
    redis.start()
    service = Service(work / "var", redis.url, database_url=args.database_url, **SERVICE_SETTINGS)
    database = "PostgreSQL" if args.database_url.startswith("postgres") else "SQLite"
    print(f"work dir {work}; {database}; gunicorn 2x8 threads; rundramatiq 2 processes",
          flush=True)  # fmt: skip
    try:
        login, token = service.prepare("bench")
        service.start_web()
        service.start_workers(processes=2, threads=4)
        api = CoprApi(service.url, "bench", (login, token))
        if args.only != "kills":
            broker_restart(service, redis, api, work, args)
        if args.only != "broker":
            worker_kills(service, api, work, args)
    finally:
        service.stop()
        redis.stop()


if __name__ == "__main__":
    main()
