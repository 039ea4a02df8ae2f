"""End-to-end fixtures: the live server, a real in-process Dramatiq worker, real tools."""

import functools
import http.server
import importlib
import importlib.util
import threading
import time

import dramatiq
import pytest
from django.apps import apps
from django.db import connections

from apps.accounts.services import api_token_regenerate
from apps.builds.models import FINAL_STATES, Build
from tests.builders.scm_helpers import GitDaemon
from tests.factories import ProjectFactory, UserFactory


@pytest.fixture
def e2e_settings(settings, live_server, tmp_path):
    """Results, keys and uploads in a fresh tree; URLs point at the live server."""
    settings.RESULTS_ROOT = tmp_path / "results"
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.PUBLIC_URL = live_server.url
    settings.RECONCILE_SECONDS = 2
    # Sources, mirrors and the portal itself are served on 127.0.0.1 here.
    settings.ALLOW_PRIVATE_URLS = True
    return settings


def declare_all_actors() -> None:
    """Import every app's actors so their queues exist before the worker starts.

    A queue declared later adds a consumer to the running worker, which races with
    Worker.pause() iterating over its consumers.
    """
    for config in apps.get_app_configs():
        if importlib.util.find_spec(f"{config.name}.actors") is not None:
            importlib.import_module(f"{config.name}.actors")


@pytest.fixture(scope="session")
def dramatiq_worker():
    """One real Dramatiq worker for the session, on the configured broker (Stub, Redis, AMQP).

    Started once (each Worker adds its middleware to the broker for good) and paused
    between the tests that use it, so it never takes messages meant for other tests.
    """
    declare_all_actors()
    broker = dramatiq.get_broker()
    broker.flush_all()
    running = dramatiq.Worker(broker, worker_threads=6, worker_timeout=100)
    running.start()
    running.pause()
    yield running
    running.stop(timeout=10_000)


@pytest.fixture
def worker(e2e_settings, transactional_db, dramatiq_worker):
    """The worker, running for this test only, with a clean broker."""
    broker = dramatiq.get_broker()
    broker.flush_all()
    dramatiq_worker.resume()
    yield dramatiq_worker
    dramatiq_worker.pause()
    broker.flush_all()
    connections.close_all()


@pytest.fixture
def packager(transactional_db):
    """A user with an API token and a project with fedora-43-x86_64 and fedora-43-aarch64."""
    user = UserFactory(username="packager")
    token = api_token_regenerate(user=user)
    project = ProjectFactory(
        owner_user=user, name="tools", chroot_names=["fedora-43-x86_64", "fedora-43-aarch64"]
    )
    return user, token, project


def finished_build(build_id: int, timeout: float = 240) -> Build:
    """The build once it has reached a final state (fails the test after `timeout` s)."""

    def done():
        build = Build.objects.get(pk=build_id)
        return build if build.state in FINAL_STATES else None

    return wait_for(done, timeout=timeout, what=f"build {build_id} to finish")


@pytest.fixture
def served_directory(tmp_path):
    """A local HTTP server for source URLs: (directory, base URL)."""
    directory = tmp_path / "www"
    directory.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield directory, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def git_daemon(tmp_path):
    """A `git daemon` serving repositories made under tmp_path/git."""
    base = tmp_path / "git"
    base.mkdir()
    daemon = GitDaemon(base)
    daemon.start()
    yield daemon
    daemon.stop()


def wait_for(predicate, *, timeout: float = 180, interval: float = 0.5, what: str = "condition"):
    """Poll until `predicate()` returns a truthy value; fail the test with `what` otherwise."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")
