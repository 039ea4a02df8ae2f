"""Load: many concurrent clients against gunicorn as configured by gunicorn.conf.py.

Starts coprsite under gunicorn on a free loopback port (fresh SQLite database, or the empty
database named by --database-url), adds a project with a few builds, then runs CLIENTS
concurrent clients, each making REQUESTS requests one after another over new connections:
the home page, a project page, /api_3/project/list, /api_3/build/list and /api/v1/builds,
in turn. Meanwhile STALLERS anonymous clients each declare a 10 GB upload and then send
nothing more, as in the attack of issue 10. Prints p50/p95/max latency, errors and how
fast the stalled uploads were refused. Bounded: at most 500 clients x 20 requests, and a
time limit.

    .venv/bin/python bench/load.py [--clients 200] [--requests 5] [--stallers 2]
"""

import argparse
import asyncio
import runpy
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.builders.srpm_factory import make_srpm  # noqa: E402
from tests.e2e.processes import CoprApi, RedisServer, Service  # noqa: E402

PATHS = (
    "/",
    "/coprs/bench/load/",
    "/api_3/project/list?ownername=bench",
    "/api_3/build/list?ownername=bench&projectname=load",
    "/api/v1/builds",
)
TIME_LIMIT_SECONDS = 300
REQUEST_TIMEOUT_SECONDS = 60


async def get(port: int, path: str) -> int:
    """One GET on a new connection (as many clients do); returns the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()  # the whole answer, until the server closes
        return int(status_line.split()[1])
    finally:
        writer.close()


async def client(port: int, number: int, requests: int, latencies: list, errors: list) -> None:
    for index in range(requests):
        path = PATHS[(number + index) % len(PATHS)]
        started = time.monotonic()
        try:
            status = await asyncio.wait_for(get(port, path), REQUEST_TIMEOUT_SECONDS)
        except (OSError, TimeoutError, ValueError, IndexError) as error:
            errors.append(f"{path}: {type(error).__name__}")
            continue
        latencies.append(time.monotonic() - started)
        if status >= 400:
            errors.append(f"{path}: HTTP {status}")


async def staller(port: int) -> tuple[str, float]:
    """An anonymous upload that declares 10 GB and sends nothing: answered how, how fast."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /api_3/build/create/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {10 * 1024**3}\r\n\r\n".encode()
    )
    await writer.drain()
    try:
        status_line = await asyncio.wait_for(reader.readline(), REQUEST_TIMEOUT_SECONDS)
        answer = status_line.decode().split(" ", 1)[1].strip() if status_line else "closed"
    except TimeoutError:
        answer = "no answer"
    writer.close()
    return answer, time.monotonic() - started


async def load(port: int, clients: int, requests: int, stallers: int):
    latencies: list[float] = []
    errors: list[str] = []
    stalled = [asyncio.create_task(staller(port)) for _ in range(stallers)]
    started = time.monotonic()
    await asyncio.wait_for(
        asyncio.gather(*(client(port, n, requests, latencies, errors) for n in range(clients))),
        TIME_LIMIT_SECONDS,
    )
    wall = time.monotonic() - started
    return latencies, errors, wall, await asyncio.gather(*stalled)


def percentile(values: list[float], fraction: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(fraction * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5, help="per client")
    parser.add_argument("--stallers", type=int, default=2)
    parser.add_argument("--builds", type=int, default=20, help="in the project listed")
    parser.add_argument("--database-url", default="", help="an empty database (PostgreSQL)")
    args = parser.parse_args()
    clients, requests = min(args.clients, 500), min(args.requests, 20)

    work = Path(tempfile.mkdtemp(prefix="coprsite-load-"))
    # No workers: the builds only need to be listed, not built; gunicorn needs a broker
    # that answers all the same.
    redis = RedisServer(work / "redis")
    redis.start()
    service = Service(work / "var", redis.url, database_url=args.database_url)
    try:
        login, token = service.prepare("bench")
        service.start_web(workers=None, threads=None)  # gunicorn.conf.py's sizes
        api = CoprApi(service.url, "bench", (login, token))
        api.project_add("load", ["fedora-43-x86_64"])
        srpm = make_srpm(work, name="listed", auto_req_prov=False)
        for _ in range(args.builds):
            api.upload("load", srpm, ["fedora-43-x86_64"]).raise_for_status()
        latencies, errors, wall, stalled = asyncio.run(
            load(service.port, clients, requests, args.stallers)
        )
    finally:
        service.stop()
        redis.stop()
        shutil.rmtree(work, ignore_errors=True)
    sizes = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    print(f"gunicorn {sizes['workers']} workers x {sizes['threads']} threads; {clients} "
          f"concurrent clients x {requests} requests (new connection each) in {wall:.1f} s: "
          f"{len(latencies) / wall:.0f} requests/s")  # fmt: skip
    print(f"latency p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
          f"p95 {percentile(latencies, 0.95) * 1000:.0f} ms, "
          f"max {max(latencies) * 1000:.0f} ms; errors {len(errors)}"
          + (f" (first: {errors[0]})" if errors else ""))  # fmt: skip
    for answer, seconds in stalled:
        print(f"anonymous 10 GB upload that stalls: {answer} after {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
