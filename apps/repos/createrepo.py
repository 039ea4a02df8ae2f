"""Repository metadata for one chroot directory of the results tree, built with createrepo_c."""

import fcntl
import gzip
import logging
import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from apps.core.tempfiles import worker_temp_file
from apps.repos import appstream

logger = logging.getLogger(__name__)
LOCK_FILE_NAME = ".createrepo.lock"
# A chroot with tens of thousands of RPMs takes minutes on a first run; an hour means stuck.
CREATEREPO_TIMEOUT_SECONDS = 3600
# createrepo_c swaps repodata/ for the new one and deletes the old files at once. A client
# that fetched the old repomd.xml just before the swap would then get 404 for the primary it
# names, so superseded files stay (unlisted) until a later run finds them older than this.
KEEP_OLD_METADATA_FOR = "1h"
_REPO_NS = "{http://linux.duke.edu/metadata/repo}"


class CreaterepoError(Exception):
    """createrepo_c failed or the chroot directory is unusable."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(f"{message}: {stderr.strip()}" if stderr.strip() else message)
        self.stderr = stderr


@dataclass(frozen=True)
class RunInfo:
    """What one createrepo_c run did: seconds it took and packages now in the repository."""

    duration: float
    package_count: int


def regenerate_repository(
    chroot_dir: Path,
    *,
    pkglist: list[str] | None = None,
    outputdir: Path | None = None,
    baseurl: str | None = None,
    appstream_origin: str | None = None,
) -> RunInfo:
    """Rebuild repodata/ of a chroot dir (results/<owner>/<project>/<chroot>/), like copr-repo.

    Without `pkglist` every RPM below the directory is listed; with it, only those paths
    (relative to the directory, e.g. "00000042-hello/hello-1-1.noarch.rpm"), so RPMs of
    builds not yet signed or published stay out; an empty list gives an empty repository.
    src.rpm files are listed as Copr does (dnf ignores source arches). Callers coalesce
    requests; this function only makes sure two processes that still meet on one directory
    run one after the other. `duration` excludes the time spent waiting for that lock.
    With `outputdir` the metadata goes there (Copr's devel/ repository), its package
    locations resolved against `baseurl`, the chroot directory's URL. With
    `appstream_origin` the repository also gets AppStream metadata (every run: createrepo_c
    drops what modifyrepo_c added, so a project that turns the option off loses it).
    """
    chroot_dir = Path(chroot_dir)
    output_dir = Path(outputdir) if outputdir else chroot_dir
    if not chroot_dir.is_dir():
        raise CreaterepoError(f"chroot directory {chroot_dir} does not exist")
    lock_fd = os.open(chroot_dir / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        started = time.monotonic()
        # Built under the lock: whether repodata/ exists decides --update.
        if outputdir:
            output_dir.mkdir(exist_ok=True)
        command = _createrepo_command(chroot_dir, output_dir, baseurl)
        if pkglist is None:
            _run_createrepo(command)
        else:
            with _pkglist_file(pkglist) as pkglist_path:
                _run_createrepo([*command, "--pkglist", pkglist_path])
        if appstream_origin:
            _add_appstream(output_dir, _binary_rpms(chroot_dir, pkglist), appstream_origin)
        duration = time.monotonic() - started
    finally:
        os.close(lock_fd)
    return RunInfo(duration=duration, package_count=count_packages(output_dir))


def _binary_rpms(chroot_dir: Path, pkglist: list[str] | None) -> list[Path]:
    if pkglist is None:
        return sorted(
            path for path in chroot_dir.rglob("*.rpm") if not path.name.endswith(".src.rpm")
        )
    return [chroot_dir / entry for entry in pkglist if not entry.endswith(".src.rpm")]


def _add_appstream(output_dir: Path, rpms: list[Path], origin: str) -> None:
    # The packages stay installable without it: a failure is logged, not a failed publish.
    try:
        appstream.add_appstream_metadata(output_dir, rpms, origin=origin)
    except appstream.AppstreamError as error:
        logger.error("no AppStream metadata for %s: %s", output_dir, error)


def count_packages(chroot_dir: Path) -> int:
    """Return how many packages repodata/ of a chroot dir lists (from the primary header)."""
    repomd_path = Path(chroot_dir) / "repodata" / "repomd.xml"
    # The metadata was written by createrepo_c on this host, not received from outside.
    repomd = ElementTree.parse(repomd_path)  # noqa: S314
    for data in repomd.getroot().iter(f"{_REPO_NS}data"):
        if data.get("type") == "primary":
            location = data.find(f"{_REPO_NS}location")
            if location is not None:
                return _primary_package_count(Path(chroot_dir) / location.get("href", ""))
    raise CreaterepoError(f"{repomd_path} lists no primary metadata")


def _dies_with_its_worker() -> list[str]:
    # A worker killed mid-run would leave createrepo_c running on an old package list; when
    # the repository is taken over, its late swap of repodata/ would hide newer packages.
    # setpriv (util-linux) asks the kernel to kill it with the worker instead.
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []


def _createrepo_command(chroot_dir: Path, output_dir: Path, baseurl: str | None) -> list[str]:
    createrepo_c = shutil.which("createrepo_c")
    if createrepo_c is None:  # said here: behind setpriv it would be a mere exit status
        raise CreaterepoError("createrepo_c is not installed")
    command = [
        *_dies_with_its_worker(),
        createrepo_c,
        str(chroot_dir),
        # dnf reads the XML; the sqlite files would only double the work (Copr does the same).
        "--no-database",
        "--general-compress-type=gz",
        # A leftover .repodata/ from a killed run would otherwise block the directory forever;
        # the flock taken in regenerate_repository is the real lock.
        "--ignore-lock",
    ]
    if output_dir != chroot_dir:
        command += ["--outputdir", str(output_dir)]
    if baseurl:
        command += ["--baseurl", baseurl]
    if (output_dir / "repodata" / "repomd.xml").is_file():
        # --update reuses entries whose file size and mtime are unchanged. Copr adds
        # --skip-stat, which trusts the file name alone; a re-signed RPM (fork, key change) or
        # a rebuild into the same build dir keeps its name, so the repo would advertise the
        # old checksum and dnf would reject the download.
        command += ["--update", f"--retain-old-md-by-age={KEEP_OLD_METADATA_FOR}"]
    comps = chroot_dir / "comps.xml"
    if comps.is_file():
        command += ["--groupfile", str(comps)]
    return command


@contextmanager
def _pkglist_file(pkglist: list[str]) -> Iterator[str]:
    # createrepo_c reads one path per line, relative to the repository directory; the file
    # lives outside the published tree so HTTP clients never see it (in WORKER_TEMP_DIR,
    # swept if the worker dies).
    for entry in pkglist:
        if "\n" in entry or entry.startswith("/"):
            raise ValueError(f"invalid pkglist entry: {entry!r}")
    with worker_temp_file("pkglist", suffix=".txt") as listing:
        listing.write("".join(f"{entry}\n" for entry in pkglist))
        listing.flush()
        yield listing.name


def _run_createrepo(command: list[str]) -> None:
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=CREATEREPO_TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        # TimeoutExpired carries bytes even when the run was in text mode.
        stderr = error.stderr
        if isinstance(stderr, bytes):
            stderr = stderr.decode(errors="replace")
        raise CreaterepoError("createrepo_c timed out", stderr or "") from error
    except FileNotFoundError as error:
        raise CreaterepoError("createrepo_c is not installed") from error
    if completed.returncode != 0:
        raise CreaterepoError(
            f"createrepo_c failed (exit {completed.returncode})",
            completed.stderr or completed.stdout,
        )


def _primary_package_count(primary_path: Path) -> int:
    with gzip.open(primary_path) as primary:
        # The count is an attribute of the root element; stop before reading the packages.
        for _event, element in ElementTree.iterparse(primary, events=("start",)):  # noqa: S314
            return int(element.get("packages", "0"))
    raise CreaterepoError(f"{primary_path} is empty")
