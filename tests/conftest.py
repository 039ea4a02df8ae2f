"""Shared fixtures."""

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import dramatiq
import pytest
from django.conf import settings
from django.test import override_settings
from dramatiq.brokers.stub import StubBroker
from rest_framework.test import APIClient

from apps.accounts.services import user_create_or_update
from builders.network import HOST_NETWORK_ENV
from builders.transports.ssh import close_all_connections
from tests.builders.ssh_helpers import SshTestHost, create_host, remove_host
from tests.builders.vm_helpers import BuiltImage, build_vm_image
from tests.factories import UserFactory, catalog_ensure
from tests.pulp_server import PulpServer, drop_database, postgres_answers, start_pulp

# The fixtures that sources come from (web, git, PyPI servers, the live server) listen on
# this host's loopback, which a build's own network namespace cannot reach; those tests
# use the runner's development switch. tests/builders/test_network.py removes it to test
# the isolation that production builders have.
os.environ.setdefault(HOST_NETWORK_ENV, "1")


def pytest_collection_modifyitems(items):
    """Mark the tests that need the StubBroker: CI runs the suite on Redis, where they skip,
    and then runs these (`-m stub_broker`) on the embedded defaults."""
    for item in items:
        if "stub_broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.stub_broker)


@pytest.fixture(scope="session", autouse=True)
def static_files_without_collectstatic():
    """Pages rendered in-process name static files without a content hash.

    The shipped storage needs `collectstatic`'s manifest; tests run from a fresh checkout
    without one, and pytest-django's live server serves static files from the sources.
    tests/e2e/test_first_hour.py checks the shipped setup, collectstatic and all.
    """
    plain = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    storages = {**settings.STORAGES, "staticfiles": plain}
    # No STATIC_ROOT: WhiteNoise would warn that the (uncollected) directory is missing.
    with override_settings(STORAGES=storages, STATIC_ROOT=None):
        yield


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def broker():
    """The configured broker, its queues emptied before and after the test."""
    yield from _emptied(dramatiq.get_broker())


@pytest.fixture
def stub_broker():
    """The broker for a test that reads its queues (`tests.queues`): only the in-memory
    StubBroker of the embedded defaults lets it; on Redis the test is skipped."""
    stub = dramatiq.get_broker()
    if not isinstance(stub, StubBroker):
        pytest.skip("inspects the StubBroker's in-memory queues")
    yield from _emptied(stub)


def _emptied(broker):
    broker.flush_all()
    yield broker
    broker.flush_all()


@pytest.fixture
def staff_user(db):
    """A Copr admin: the staff role (apps/accounts/roles.py), not a superuser."""
    user = UserFactory(username="operator")
    return user_create_or_update(username=user.username, is_staff=True)[0]


@pytest.fixture
def superuser(db):
    """Also what runs commands on builders: pools, their commands, limits and images."""
    user = UserFactory(username="root")
    return user_create_or_update(username=user.username, is_superuser=True)[0]


@pytest.fixture(autouse=True)
def chroot_catalog(request):
    """The migrated chroot catalog, for transactional tests too: the one before may have
    flushed it (pages and the APIs list it without going through the factories)."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and marker.kwargs.get("transaction")) or any(
        name in request.fixturenames for name in ("transactional_db", "live_server")
    )
    if transactional:
        request.getfixturevalue("transactional_db")
        catalog_ensure()


@pytest.fixture(autouse=True)
def workspaces_root_per_process(settings):
    """Reconcile sweeps the workspaces of tasks its database does not know as running, and
    parallel test processes (pytest -n) each have a database of their own (see settings)."""
    settings.WORKSPACES_ROOT = Path(settings.VAR_DIR) / "test-workspaces" / str(os.getpid())


@pytest.fixture(scope="session")
def vm_image() -> BuiltImage:
    """The VM base image, built by the operator command and cached between runs."""
    return build_vm_image()


@pytest.fixture(scope="session")
def aarch64_vm_image() -> BuiltImage:
    """The arm64 base image (tests/e2e/test_vm_arches.py), cached beside the host's."""
    return build_vm_image("aarch64")


@pytest.fixture
def ssh_hosts(tmp_path: Path) -> Iterator[Callable[[int], list[SshTestHost]]]:
    """`ssh_hosts(n)`: n real SSH builder hosts, each in a network namespace of its own."""
    made: list[SshTestHost] = []

    def make(count: int) -> list[SshTestHost]:
        for _ in range(count):
            made.append(create_host(tmp_path / f"host{len(made)}", f"host{len(made)}"))
        return made[-count:]

    yield make
    close_all_connections()  # the masters a test's jobs left for the builders' next jobs
    for host in made:
        remove_host(host)


@pytest.fixture(scope="session")
def pulp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PulpServer]:
    """A real Pulp (API, content app, worker) for this test process, from scripts/install-pulp:
    its own database and ports, so parallel workers (pytest -n) each have one."""
    if not postgres_answers():
        # Pulp runs on PostgreSQL only; .ci/run (and scripts/ensure-services) provide it.
        pytest.skip("Pulp needs PostgreSQL on 127.0.0.1:5432 (or PULP_TEST_DATABASE_URL)")
    server = start_pulp(tmp_path_factory.mktemp("pulp"))
    yield server
    server.stop()
    drop_database(server.database)
