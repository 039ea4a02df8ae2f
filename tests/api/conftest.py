"""Fixtures shared by the v1 and v3 API tests."""

from pathlib import Path

import pytest

from tests.builders.srpm_factory import make_binary_rpm, make_srpm
from tests.factories import ProjectFactory, UserFactory


@pytest.fixture
def alice(db):
    return UserFactory(username="alice")


@pytest.fixture
def bob(db):
    return UserFactory(username="bob")


@pytest.fixture
def hello_project(alice):
    return ProjectFactory(
        name="hello", owner_user=alice, chroot_names=["fedora-43-x86_64", "fedora-44-x86_64"]
    )


@pytest.fixture(scope="session")
def package_files(tmp_path_factory) -> dict[str, Path]:
    """A real tiny SRPM and the binary RPM of the same package, built once per session."""
    directory = tmp_path_factory.mktemp("packages")
    return {"srpm": make_srpm(directory), "rpm": make_binary_rpm(directory)}
