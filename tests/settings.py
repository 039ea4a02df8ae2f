"""The settings pytest loads: coprsite.settings, with a Redis database per parallel test process.

`pytest -n N` (pytest-xdist, what `make test` runs) starts N test processes gw0, gw1, …
against one BROKER_URL. The `broker` fixture and the e2e worker flush their Redis database,
and a worker consumes every queue in it, so two processes on one database would empty or
take each other's messages. Process gwK takes database `base - K` of the given URL (CI's
15 gives 15 and 14; 11 gives 11 and 10), staying inside Redis's default 16 databases.
pytest-django gives each process a database of its own the same way (test_<name>_gwK).

This runs before Django reads its settings (pyproject.toml names this module, and
pytest-django loads it before any conftest). The URL goes into the environment, so the
processes a test starts (gunicorn, rundramatiq, manage.py) use it too.
"""

import os
from urllib.parse import urlsplit, urlunsplit


def broker_url_for_test_process(url: str, worker: str | None, workers: int) -> str:
    """BROKER_URL for xdist worker `worker` ("gw1"; None outside xdist) of `workers`."""
    if not url or worker is None:
        return url
    parts = urlsplit(url)
    if not parts.scheme.startswith("redis"):
        # RabbitMQ queues are named after the actors: processes sharing a vhost would take
        # each other's messages, and a vhost per process needs an administrator to create it.
        raise ValueError(f"pytest -n runs on Redis or the embedded broker, not {parts.scheme}")
    if "db=" in parts.query:
        raise ValueError("pytest -n: give the Redis database in BROKER_URL's path (/15)")
    base = int(parts.path.strip("/") or 0)
    # A worker that replaces a crashed one gets the next id (gw2 of -n 2).
    last = max(workers - 1, int(worker.removeprefix("gw")))
    if base - last < 0:
        raise ValueError(
            f"pytest -n {workers} takes Redis databases {base} down to {base - last}: "
            f"name database {last} or higher in BROKER_URL"
        )
    return urlunsplit(parts._replace(path=f"/{base - int(worker.removeprefix('gw'))}"))


# The processes a test starts inherit the environment, this module (as DJANGO_SETTINGS_MODULE)
# and PYTEST_XDIST_WORKER among it: they take the URL as they find it, already made for them.
_SHIFTED_FOR = "COPRSITE_TEST_BROKER_URL_WORKER"
given_broker_url = os.environ.get("BROKER_URL", "")  # lower case: not a setting
_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _worker and os.environ.get(_SHIFTED_FOR) != _worker:
    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if given_broker_url:
        os.environ["BROKER_URL"] = broker_url_for_test_process(given_broker_url, _worker, _workers)
    os.environ[_SHIFTED_FOR] = _worker

# A builder killed in a test does not come back: its worker gives up on it soon (the
# detached-job tests set their own). Processes a test starts inherit it.
os.environ.setdefault("BUILDER_RECONNECT_SECONDS", "5")

from coprsite.settings import *  # noqa: E402, F403
