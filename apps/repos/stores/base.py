"""What every repository store offers: publish one chroot repository's wanted content."""

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from apps.repos.models import Repository


class StoreError(Exception):
    """The store refused the work (createrepo_c failed, Pulp rejected a package): the tasks
    waiting for this run fail with the message."""


class StoreUnavailable(Exception):
    """The store cannot be reached now (Pulp down, a timeout): nothing failed, the run is
    tried again later and the tasks keep waiting in publishing."""


@dataclass(frozen=True)
class TaskContent:
    """One task's RPMs that the repository must list: where they are on disk, by build."""

    build_id: int
    # "<build dir>/<file>" relative to the chroot directory, as createrepo_c's pkglist wants.
    relative_paths: tuple[str, ...]
    # The build's package name (retention keeps the newest builds of each package).
    package: str = ""


@dataclass(frozen=True)
class RunInfo:
    """What one run did: seconds it took and packages now in the repository."""

    duration: float
    package_count: int


class RepositoryStore(Protocol):
    name: str

    def publish(
        self, repository: Repository, chroot_dir: Path, content: list[TaskContent]
    ) -> RunInfo:
        """Make the repository list exactly `content` (files below `chroot_dir`), then
        publish it: the main repository, or in devel mode the devel one, and the main one
        too when `repository.main_requested_serial` asks for it."""
        ...

    def remove_project(self, ownername: str, dirnames: list[str]) -> None:
        """Remove what the store keeps of a deleted project's directories (its main one and
        its `:custom:`/`:pr:` ones)."""
        ...
