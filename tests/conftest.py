"""Shared fixtures."""

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture
def staff_user(db):
    return UserFactory(username="operator", is_staff=True, is_superuser=True)
