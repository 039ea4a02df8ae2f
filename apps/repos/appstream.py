"""AppStream metadata for a repository, added to its repomd.xml as Copr does (`copr-repo`).

Fedora's Copr runs appstream-builder (appstream-glib) over the RPMs; Debian's appstream-glib
no longer ships it, so the well-kept successor does the work: `appstreamcli compose` (the
AppStream project, package appstream-compose) over the AppStream files of the repository's
packages, then `modifyrepo_c` adds the catalog (`appstream`) and its icons
(`appstream-icons`) to repodata/.
"""

import gzip
import logging
import shutil
import subprocess
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path, PurePosixPath

import rpmfile

logger = logging.getLogger(__name__)
COMPOSE = "/usr/libexec/appstreamcli-compose"
# Where packages keep what AppStream reads: metainfo, desktop entries, icons.
APPSTREAM_PREFIXES = (
    "usr/share/metainfo/",
    "usr/share/appdata/",
    "usr/share/applications/",
    "usr/share/icons/",
    "usr/share/pixmaps/",
)
METAINFO_PREFIXES = APPSTREAM_PREFIXES[:2]
# The packages come from builds: a metainfo file or icon is kilobytes, never this much.
MAX_FILE_BYTES = 8 << 20
MAX_PACKAGE_BYTES = 64 << 20
COMPOSE_TIMEOUT_SECONDS = 600
# Given to modifyrepo_c uncompressed: it gzips them itself (and would inflate a .gz).
CATALOG_NAME = "appstream.xml"
ICONS_NAME = "appstream-icons.tar"


class AppstreamError(Exception):
    """The catalog could not be composed or added; the repository stays without it."""


def appstream_available() -> bool:
    return Path(COMPOSE).is_file() and shutil.which("modifyrepo_c") is not None


def add_appstream_metadata(repo_dir: Path, rpm_paths: list[Path], *, origin: str) -> int:
    """Compose the catalog of `rpm_paths` and add it to repo_dir/repodata; returns how many
    components it lists (0 still adds an empty catalog: the option is on)."""
    if not appstream_available():
        raise AppstreamError("appstreamcli compose (package appstream-compose) is not installed")
    with tempfile.TemporaryDirectory(prefix="coprsite-appstream-") as work:
        work_dir = Path(work)
        tree, output = work_dir / "tree", work_dir / "output"
        tree.mkdir()
        owners = unpack_appstream_files(rpm_paths, tree)
        components = compose(tree, output, origin) if owners else []
        catalog = write_catalog(work_dir / CATALOG_NAME, components, owners, origin)
        modifyrepo(catalog, repo_dir / "repodata", "appstream")
        icons = output / "icons"
        if components and icons.is_dir() and any(icons.iterdir()):
            archive = work_dir / ICONS_NAME
            with tarfile.open(archive, "w") as tar:
                for entry in sorted(icons.iterdir()):
                    tar.add(entry, arcname=entry.name)
            modifyrepo(archive, repo_dir / "repodata", "appstream-icons")
    return len(components)


def unpack_appstream_files(rpm_paths: list[Path], tree: Path) -> dict[str, str]:
    """Copy the AppStream files of each package into `tree`; returns {metainfo file: package}.

    Read with rpmfile (nothing of the package runs); only regular files under
    APPSTREAM_PREFIXES, by their normalized names: no symlink, no `..`, nothing outside.
    """
    owners: dict[str, str] = {}
    for path in rpm_paths:
        try:
            owners.update(_unpack_one(path, tree))
        except Exception as error:  # rpmfile raises anything for a payload it cannot read
            logger.warning("AppStream: %s skipped: %s", path.name, error)
    return owners


def _unpack_one(path: Path, tree: Path) -> dict[str, str]:
    owners: dict[str, str] = {}
    with rpmfile.open(str(path)) as package:
        if not any(name.startswith(METAINFO_PREFIXES) for name in _file_names(package)):
            return owners  # most packages: no payload to read
        name = package.headers.get("name", b"").decode()
        total = 0
        for member in package.getmembers():
            relative = _safe_relative(member.name)
            if relative is None or not relative.startswith(APPSTREAM_PREFIXES):
                continue
            # rpmfile's mode has no file type bits; whatever it is, we write a plain file.
            if member.isdir or member.issymlink:
                continue
            total += member.size
            if member.size > MAX_FILE_BYTES or total > MAX_PACKAGE_BYTES:
                raise AppstreamError(f"{relative} makes the AppStream files too large")
            target = tree / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(package.extractfile(member).read(MAX_FILE_BYTES))
            if relative.startswith(METAINFO_PREFIXES):
                owners[relative] = name
    return owners


def _file_names(package) -> list[str]:
    headers = package.headers
    dirnames = [d.decode() for d in headers.get("dirnames", [])]
    basenames = [b.decode() for b in headers.get("basenames", [])]
    indexes = headers.get("dirindexes", [])
    if isinstance(indexes, int):
        indexes = [indexes]
    return [
        (dirnames[index] + base).lstrip("/")
        for index, base in zip(indexes, basenames, strict=False)
    ]


def _safe_relative(name: str) -> str | None:
    parts = PurePosixPath(name.removeprefix("./").lstrip("/")).parts
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def compose(tree: Path, output: Path, origin: str) -> list[ElementTree.Element]:
    command = [
        COMPOSE,
        "--no-net",
        f"--origin={origin}",
        f"--result-root={output}",
        f"--data-dir={output / 'data'}",
        f"--icons-dir={output / 'icons'}",
        str(tree),
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=COMPOSE_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise AppstreamError("appstreamcli compose timed out") from error
    if completed.returncode != 0:
        raise AppstreamError(f"appstreamcli compose failed: {completed.stderr.strip()[-500:]}")
    catalogs = list((output / "data").glob("*.xml.gz"))
    if not catalogs:
        return []  # nothing it accepted as a component
    with gzip.open(catalogs[0]) as catalog:
        # Written just now by appstreamcli from the files above, not read from the network.
        return list(ElementTree.parse(catalog).getroot())  # noqa: S314


def write_catalog(
    path: Path, components: list[ElementTree.Element], owners: dict[str, str], origin: str
) -> Path:
    """The catalog with each component's <pkgname> (software centres install by it)."""
    package_of_id = _package_of_component_id(path.parent / "tree", owners)
    root = ElementTree.Element("components", {"version": "0.16", "origin": origin})
    for component in components:
        component_id = component.findtext("id", "")
        package = package_of_id.get(component_id)
        if package and component.find("pkgname") is None:
            ElementTree.SubElement(component, "pkgname").text = package
        root.append(component)
    ElementTree.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path


def _package_of_component_id(tree: Path, owners: dict[str, str]) -> dict[str, str]:
    found = {}
    for relative, package in owners.items():
        try:
            # Parsed from a package's file with the stdlib parser, which resolves no
            # external entities; a broken file only loses its <pkgname>.
            component_id = ElementTree.parse(tree / relative).getroot().findtext("id")  # noqa: S314
        except (ElementTree.ParseError, OSError):
            continue
        if component_id:
            found[component_id.strip()] = package
    return found


def modifyrepo(path: Path, repodata: Path, mdtype: str) -> None:
    command = ["modifyrepo_c", "--compress-type=gz", f"--mdtype={mdtype}", str(path), str(repodata)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if completed.returncode != 0:
        raise AppstreamError(f"modifyrepo_c failed: {completed.stderr.strip()[-500:]}")
