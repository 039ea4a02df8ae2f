"""Schemathesis over /api/v1/schema/: a bounded run of generated requests, none a 5xx.

Against the Django app in-process (WSGI), with alice's API token so writes get past the
login, a few examples per operation and a deadline per example: seconds, not minutes.
"""

import base64
import warnings
from datetime import timedelta

import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from apps.accounts.services import api_token_regenerate
from tests.factories import BuildFactory, ProjectFactory, UserFactory

X86 = "fedora-43-x86_64"


@pytest.fixture(autouse=True)
def in_process_server(db, tmp_path, settings):
    settings.RESULTS_ROOT = tmp_path / "results"
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.SUBMIT_CHECK_URLS = False
    # As Django's test client does: the end of a request must not close the connection that
    # holds the test's transaction.
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def alice_headers(db) -> dict[str, str]:
    alice = UserFactory(username="alice")
    BuildFactory(project=ProjectFactory(owner_user=alice, name="tools", chroot_names=[X86]))
    token = api_token_regenerate(user=alice)
    credentials = base64.b64encode(f"{token.login}:{token.token}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


# Read from the app at collection; requests then run in the test, in its transaction.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # WhiteNoise: no collected static files in a checkout
    schema = schemathesis.openapi.from_wsgi("/api/v1/schema/", WSGIHandler())


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=timedelta(seconds=5),
    # One database and one user for all the examples of an operation: that is the point.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_api_v1_never_answers_a_server_error(case, alice_headers):
    response = case.call(headers=alice_headers)
    case.validate_response(response, checks=[not_a_server_error])
