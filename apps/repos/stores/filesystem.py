"""The filesystem store: repodata/ written by createrepo_c into the chroot directory of the
results tree, served from RESULTS_ROOT (Copr's `backend` storage)."""

from pathlib import Path

from apps.core.paths import results_url
from apps.repos import createrepo
from apps.repos.models import Repository
from apps.repos.stores.base import RunInfo, StoreError, TaskContent

DEVEL_DIR = "devel"  # <chroot>/devel/repodata, Copr's buildroot-only repository


class FilesystemStore:
    name = "filesystem"

    def publish(
        self, repository: Repository, chroot_dir: Path, content: list[TaskContent]
    ) -> RunInfo:
        files = [path for task in content for path in task.relative_paths]
        chroot_dir.mkdir(parents=True, exist_ok=True)
        try:
            info = run_createrepo(repository, chroot_dir, files)
        except createrepo.CreaterepoError as error:
            raise StoreError(str(error)) from error
        return RunInfo(duration=info.duration, package_count=info.package_count)

    def remove_project(self, ownername: str, dirnames: list[str]) -> None:
        """Nothing of its own: the repodata lives in the project's results directories,
        which are removed with them."""


def run_createrepo(repository: Repository, directory: Path, files: list[str]):
    """Regenerate the main repodata, or in devel mode devel/repodata (Copr's `--devel`),
    and the main one only when a request asked for it (or it does not exist yet: empty)."""
    project = repository.project
    # Copr composes AppStream metadata for the main repository only, never for devel/.
    origin = f"{project.ownername}-{repository.project_dirname}" if project.appstream else None
    if not project.devel_mode:
        return createrepo.regenerate_repository(directory, pkglist=files, appstream_origin=origin)
    if repository.main_requested_serial > repository.published_serial:
        createrepo.regenerate_repository(directory, pkglist=files, appstream_origin=origin)
    elif not (directory / "repodata" / "repomd.xml").is_file():
        createrepo.regenerate_repository(directory, pkglist=[])
    baseurl = results_url(f"{project.ownername}/{repository.project_dirname}/{directory.name}/")
    return createrepo.regenerate_repository(
        directory, pkglist=files, outputdir=directory / DEVEL_DIR, baseurl=baseurl
    )
