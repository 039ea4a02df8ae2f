"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py coprsite.wsgi`.

Meant to sit behind nginx with `proxy_request_buffering on` (docs/operations.md): nginx
reads every request body and every response for the client, so a gunicorn thread is busy
only while Django works, never while a slow client trickles bytes. Without nginx, the
application itself cuts off a body that arrives too slowly (apps/core/slowbody.py, 408) and
caps each user's uploads in flight (429), so slow clients hold few threads and not for
long. Threads (`gthread`) rather than more processes: requests wait mostly on PostgreSQL
and the disk, and a thread costs far less memory than a worker process. Each value can be
changed from the environment; command-line flags override this file.
"""

import multiprocessing
import os


def env(name: str, default: str) -> str:
    """A variable's value; set-but-empty counts as unset, as in .env.example."""
    return os.environ.get(name) or default


bind = env("GUNICORN_BIND", "127.0.0.1:8000")
# gunicorn's own convention; default: one process per CPU plus one, each with its threads.
workers = int(env("WEB_CONCURRENCY", str(multiprocessing.cpu_count() + 1)))
worker_class = "gthread"
threads = int(env("GUNICORN_THREADS", "8"))
# Above any page's or API call's worst time (a 512 MB upload read from nginx's buffer
# included); a worker stuck longer than this is restarted.
timeout = int(env("GUNICORN_TIMEOUT", "120"))
graceful_timeout = 30
keepalive = 5
# Header limits (gunicorn's defaults, stated): bodies are bounded by nginx and by Django's
# upload checks (coprsite.settings MAX_SRPM_BYTES, DATA_UPLOAD_MAX_MEMORY_SIZE).
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
# Recycle workers now and then, so a slow leak cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200
accesslog = env("GUNICORN_ACCESS_LOG", "-")


def on_starting(server) -> None:
    """Refuse to start (in the arbiter, once) without a well-formed broker that answers.

    With BROKER_URL unset the web would queue builds where no worker reads them; a broker
    that is down only at a later worker restart is the broker's outage, not a reason to
    stop serving pages.
    """
    from coprsite.broker import startup_problem

    problem = startup_problem(env("BROKER_URL", ""), "gunicorn")
    if problem:
        raise RuntimeError(problem)  # gunicorn prints "Error: <problem>" and exits 1


def when_ready(server) -> None:
    """Warn when PUBLIC_URL, which every absolute link starts with, misses the bound address."""
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coprsite.settings")
    from django.conf import settings

    from coprsite.public_url import public_url_mismatch

    for address in server.cfg.address:
        if isinstance(address, tuple):  # (host, port); a unix socket sits behind a proxy
            problem = public_url_mismatch(settings.PUBLIC_URL, address[0], address[1])
            if problem:
                server.log.warning("%s", problem)
