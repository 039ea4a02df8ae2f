"""Tests for apps/repos/createrepo.py with the real createrepo_c."""

import gzip
import hashlib
import os
import shutil
import xml.etree.ElementTree as ElementTree
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from apps.repos import createrepo
from apps.repos.createrepo import CreaterepoError, count_packages, regenerate_repository
from tests.repos.rpm_helpers import build_rpm, place_build

COMMON_NS = "{http://linux.duke.edu/metadata/common}"
REPO_NS = "{http://linux.duke.edu/metadata/repo}"


@pytest.fixture(scope="module")
def rpm_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Path]]:
    """Build each test package once per module; tests copy them into their own chroot."""
    workdir = tmp_path_factory.mktemp("rpms")
    return {
        "hello": build_rpm(workdir, name="hello", with_srpm=True),
        "world": build_rpm(workdir, name="world", message="world from coprsite"),
    }


@pytest.fixture
def chroot_dir(tmp_path: Path) -> Path:
    chroot = tmp_path / "results" / "@copr-team" / "hello" / "fedora-43-x86_64"
    chroot.mkdir(parents=True)
    return chroot


def primary_packages(chroot: Path) -> dict[tuple[str, str], dict[str, str]]:
    """Read repodata the way a client would: repomd.xml, then the primary it names."""
    # S314: the XML was just written by createrepo_c in this test's own directory.
    repomd = ElementTree.parse(chroot / "repodata" / "repomd.xml").getroot()  # noqa: S314
    primary = next(d for d in repomd.iter(f"{REPO_NS}data") if d.get("type") == "primary")
    href = primary.find(f"{REPO_NS}location").get("href")
    with gzip.open(chroot / href) as stream:
        root = ElementTree.parse(stream).getroot()  # noqa: S314
    packages = {}
    for package in root.iter(f"{COMMON_NS}package"):
        name = package.find(f"{COMMON_NS}name").text
        arch = package.find(f"{COMMON_NS}arch").text
        packages[(name, arch)] = {
            "location": package.find(f"{COMMON_NS}location").get("href"),
            "checksum": package.find(f"{COMMON_NS}checksum").text,
        }
    return packages


def test_first_run_lists_binary_and_source_packages(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]]
) -> None:
    place_build(chroot_dir, 1, rpm_cache["hello"])
    info = regenerate_repository(chroot_dir)
    print(f"first createrepo_c run took {info.duration:.3f}s")
    assert info.package_count == 2
    packages = primary_packages(chroot_dir)
    assert set(packages) == {("hello", "noarch"), ("hello", "src")}
    assert packages[("hello", "noarch")]["location"] == "00000001-hello/hello-1.0-1.noarch.rpm"
    assert info.duration > 0


def test_second_run_adds_new_build_dir(chroot_dir: Path, rpm_cache: dict[str, list[Path]]) -> None:
    place_build(chroot_dir, 1, rpm_cache["hello"])
    regenerate_repository(chroot_dir)
    place_build(chroot_dir, 2, rpm_cache["world"])
    info = regenerate_repository(chroot_dir)
    print(f"--update createrepo_c run took {info.duration:.3f}s")
    assert info.package_count == 3
    assert set(primary_packages(chroot_dir)) == {
        ("hello", "noarch"),
        ("hello", "src"),
        ("world", "noarch"),
    }
    temporary = [
        p.name for p in chroot_dir.iterdir() if p.name.startswith((".repodata", "repodata."))
    ]
    assert temporary == []


def test_deleted_build_dir_leaves_the_repository(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]]
) -> None:
    place_build(chroot_dir, 1, rpm_cache["hello"])
    world_dir = place_build(chroot_dir, 2, rpm_cache["world"])
    regenerate_repository(chroot_dir)
    shutil.rmtree(world_dir)
    info = regenerate_repository(chroot_dir)
    assert info.package_count == 2
    assert ("world", "noarch") not in primary_packages(chroot_dir)


def test_replaced_rpm_with_same_name_gets_new_checksum(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]], tmp_path: Path
) -> None:
    # A re-signed or rebuilt RPM keeps its file name; --skip-stat would keep the stale
    # checksum and dnf would refuse the download.
    build_dir = place_build(chroot_dir, 1, rpm_cache["hello"][:1])
    regenerate_repository(chroot_dir)
    rebuilt = build_rpm(tmp_path / "rebuild", name="hello", message="rebuilt hello")[0]
    target = build_dir / rebuilt.name
    shutil.copyfile(rebuilt, target)
    later = target.stat().st_mtime + 10  # the rebuild happens later than the first run
    os.utime(target, (later, later))
    regenerate_repository(chroot_dir)
    expected = hashlib.sha256(target.read_bytes()).hexdigest()
    assert primary_packages(chroot_dir)[("hello", "noarch")]["checksum"] == expected


def test_superseded_metadata_stays_for_clients_mid_download(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]]
) -> None:
    place_build(chroot_dir, 1, rpm_cache["hello"])
    regenerate_repository(chroot_dir)
    old_primary = next((chroot_dir / "repodata").glob("*-primary.xml.gz"))
    place_build(chroot_dir, 2, rpm_cache["world"])
    regenerate_repository(chroot_dir)
    assert old_primary.exists()
    assert old_primary.name not in (chroot_dir / "repodata" / "repomd.xml").read_text()


def test_empty_chroot_gets_an_empty_repository(chroot_dir: Path) -> None:
    info = regenerate_repository(chroot_dir)
    assert info.package_count == 0
    assert (chroot_dir / "repodata" / "repomd.xml").is_file()


def test_stale_temporary_repodata_does_not_block(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]]
) -> None:
    place_build(chroot_dir, 1, rpm_cache["hello"])
    (chroot_dir / ".repodata").mkdir()  # left by a createrepo_c that was killed
    assert regenerate_repository(chroot_dir).package_count == 2


def test_comps_file_becomes_group_metadata(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]]
) -> None:
    place_build(chroot_dir, 1, rpm_cache["hello"])
    (chroot_dir / "comps.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<comps><group><id>hello-group</id>'
        "<name>Hello</name><description>Hello</description><packagelist>"
        '<packagereq type="default">hello</packagereq></packagelist></group></comps>\n'
    )
    regenerate_repository(chroot_dir)
    repomd = (chroot_dir / "repodata" / "repomd.xml").read_text()
    assert '<data type="group">' in repomd


def test_concurrent_calls_on_one_directory_all_succeed(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]]
) -> None:
    place_build(chroot_dir, 1, rpm_cache["hello"])
    place_build(chroot_dir, 2, rpm_cache["world"])
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(regenerate_repository, [chroot_dir] * 4))
    assert [info.package_count for info in results] == [3, 3, 3, 3]
    assert count_packages(chroot_dir) == 3


def test_missing_directory_raises(tmp_path: Path) -> None:
    with pytest.raises(CreaterepoError):
        regenerate_repository(tmp_path / "no-such-chroot")


def test_createrepo_failure_carries_stderr(chroot_dir: Path) -> None:
    (chroot_dir / "repodata").write_text("a file where the repodata directory belongs\n")
    with pytest.raises(CreaterepoError) as caught:
        regenerate_repository(chroot_dir)
    assert caught.value.stderr
    assert "createrepo_c failed" in str(caught.value)


def test_pkglist_limits_the_repository_to_published_files(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]]
) -> None:
    place_build(chroot_dir, 1, rpm_cache["hello"])
    place_build(chroot_dir, 2, rpm_cache["world"])  # a build not signed or published yet
    info = regenerate_repository(chroot_dir, pkglist=["00000001-hello/hello-1.0-1.noarch.rpm"])
    assert info.package_count == 1
    assert set(primary_packages(chroot_dir)) == {("hello", "noarch")}
    regenerate_repository(
        chroot_dir,
        pkglist=["00000001-hello/hello-1.0-1.noarch.rpm", "00000002-world/world-1.0-1.noarch.rpm"],
    )
    assert set(primary_packages(chroot_dir)) == {("hello", "noarch"), ("world", "noarch")}


def test_pkglist_is_written_to_the_worker_temp_dir_and_removed(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]], settings, tmp_path: Path, monkeypatch
) -> None:
    """Where the worker-file sweep looks for it, named with the worker's pid."""
    settings.WORKER_TEMP_DIR = tmp_path / "worker-tmp"
    place_build(chroot_dir, 1, rpm_cache["hello"])
    seen = []
    real_run = createrepo._run_createrepo

    def run_and_look(command: list[str]) -> None:  # the real createrepo_c run, watched
        listing = Path(command[command.index("--pkglist") + 1])
        seen.append((listing.parent, listing.name, listing.read_text()))
        real_run(command)

    monkeypatch.setattr(createrepo, "_run_createrepo", run_and_look)
    regenerate_repository(chroot_dir, pkglist=["00000001-hello/hello-1.0-1.noarch.rpm"])

    ((directory, name, content),) = seen
    assert directory == settings.WORKER_TEMP_DIR
    assert name.startswith(f"coprsite-pkglist-{os.getpid()}-") and name.endswith(".txt")
    assert content == "00000001-hello/hello-1.0-1.noarch.rpm\n"
    assert list(settings.WORKER_TEMP_DIR.iterdir()) == []


def test_empty_pkglist_gives_an_empty_repository(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]]
) -> None:
    place_build(chroot_dir, 1, rpm_cache["hello"])
    regenerate_repository(chroot_dir)
    assert regenerate_repository(chroot_dir, pkglist=[]).package_count == 0


def test_absolute_pkglist_entry_is_refused(chroot_dir: Path) -> None:
    with pytest.raises(ValueError):
        regenerate_repository(chroot_dir, pkglist=["/etc/passwd"])


def test_appstream_metadata_is_added_each_run_and_goes_when_turned_off(
    chroot_dir: Path, rpm_cache: dict[str, list[Path]]
) -> None:
    place_build(chroot_dir, 1, rpm_cache["hello"])
    regenerate_repository(chroot_dir, appstream_origin="copr-team-hello")
    assert '<data type="appstream">' in (chroot_dir / "repodata" / "repomd.xml").read_text()
    place_build(chroot_dir, 2, rpm_cache["world"])
    regenerate_repository(chroot_dir, appstream_origin="copr-team-hello")  # an --update run
    repomd = (chroot_dir / "repodata" / "repomd.xml").read_text()
    assert repomd.count('<data type="appstream">') == 1
    assert set(primary_packages(chroot_dir)) >= {("hello", "noarch"), ("world", "noarch")}
    regenerate_repository(chroot_dir)
    assert "appstream" not in (chroot_dir / "repodata" / "repomd.xml").read_text()
