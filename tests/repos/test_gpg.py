"""Tests for apps/repos/gpg.py with the real gpg and rpmsign."""

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from apps.repos import gpg
from tests.repos.rpm_helpers import build_rpm, import_public_key, rpm_checksig

OWNER = "@copr-team"
PROJECT = "hello"
DOMAIN = "example.org"
# Long enough that keys_root/<owner>/<project>/S.gpg-agent exceeds a Unix socket path (108).
OTHER_OWNER = "o" * 40
OTHER_PROJECT = "p" * 40
FIVE_YEARS = 5 * 365 * 86400
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def project_key(keys_root: Path) -> gpg.KeyInfo:
    return gpg.generate_project_key(
        keys_root=keys_root, owner=OWNER, project=PROJECT, sign_domain=DOMAIN
    )


@pytest.fixture(scope="module")
def other_key(keys_root: Path) -> gpg.KeyInfo:
    return gpg.generate_project_key(
        keys_root=keys_root, owner=OTHER_OWNER, project=OTHER_PROJECT, sign_domain=DOMAIN
    )


@pytest.fixture
def unsigned_rpm(tmp_path: Path) -> Path:
    return build_rpm(tmp_path)[0]


@pytest.fixture
def trusting_rpmdb(tmp_path: Path, project_key: gpg.KeyInfo) -> Path:
    """An rpmdb that trusts only the project's public key."""
    pubkey = tmp_path / "pubkey.gpg"
    pubkey.write_text(project_key.public_key)
    dbpath = tmp_path / "rpmdb"
    import_public_key(pubkey, dbpath=dbpath)
    return dbpath


def show_key(armored: str, tmp_path: Path) -> list[list[str]]:
    """Parse an armored key with gpg itself (an empty homedir, nothing imported)."""
    home = tmp_path / "show-home"
    home.mkdir(mode=0o700, exist_ok=True)
    shown = subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--with-colons", "--show-keys"],
        input=armored,
        capture_output=True,
        text=True,
        check=True,
    )
    return [line.split(":") for line in shown.stdout.splitlines()]


def test_key_has_copr_identity_and_is_rsa_4096(project_key: gpg.KeyInfo, tmp_path: Path) -> None:
    assert project_key.uid_name == "@copr-team_hello"
    assert project_key.uid_email == "@copr-team#hello@copr.example.org"
    records = show_key(project_key.public_key, tmp_path)
    public = next(record for record in records if record[0] == "pub")
    uid = next(record for record in records if record[0] == "uid")
    fingerprint = next(record for record in records if record[0] == "fpr")
    assert public[2] == "4096"
    assert public[3] == "1"  # RSA
    assert "s" in public[11]
    assert abs(int(public[6]) - int(public[5]) - FIVE_YEARS) < 3 * 86400
    assert uid[9] == "@copr-team_hello <@copr-team#hello@copr.example.org>"
    assert fingerprint[9] == project_key.fingerprint
    assert project_key.key_id == project_key.fingerprint[-16:]


def test_key_files_are_private_and_no_agent_is_left(
    project_key: gpg.KeyInfo, keys_root: Path
) -> None:
    home = keys_root / OWNER / PROJECT
    entries = [home.parent, *home.rglob("*")]
    assert any(path.parent.name == "private-keys-v1.d" for path in entries)
    for path in [home, *entries]:
        if path.is_dir():
            assert path.stat().st_mode & 0o777 == 0o700, path
        else:
            assert path.is_file(), f"{path} is not a regular file (agent socket left?)"
            assert path.stat().st_mode & 0o777 == 0o600, path


def test_generate_is_idempotent(project_key: gpg.KeyInfo, keys_root: Path) -> None:
    again = gpg.generate_project_key(
        keys_root=keys_root, owner=OWNER, project=PROJECT, sign_domain=DOMAIN
    )
    assert again == project_key
    assert len(list((keys_root / OWNER / PROJECT / "private-keys-v1.d").iterdir())) == 1


def test_concurrent_generation_creates_one_key(tmp_path: Path) -> None:
    script = (
        "import sys; from pathlib import Path; from apps.repos import gpg; "
        "print(gpg.generate_project_key(keys_root=Path(sys.argv[1]), owner='bob', "
        "project='race', sign_domain='example.org').fingerprint)"
    )
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(tmp_path)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [racer.communicate(timeout=120) for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0], results
    fingerprints = {stdout.strip() for stdout, _stderr in results}
    assert len(fingerprints) == 1
    assert len(list((tmp_path / "bob" / "race" / "private-keys-v1.d").iterdir())) == 1


def test_long_paths_work_despite_socket_length_limit(
    other_key: gpg.KeyInfo, keys_root: Path
) -> None:
    assert len(str(keys_root / OTHER_OWNER / OTHER_PROJECT / "S.gpg-agent")) > 108
    assert other_key.uid_email == f"{OTHER_OWNER}#{OTHER_PROJECT}@copr.{DOMAIN}"


def test_export_public_key_matches_key_info(
    project_key: gpg.KeyInfo, keys_root: Path, tmp_path: Path
) -> None:
    exported = gpg.export_public_key(keys_root=keys_root, owner=OWNER, project=PROJECT)
    assert exported.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert "PRIVATE" not in exported
    fingerprints = [r[9] for r in show_key(exported, tmp_path) if r[0] == "fpr"]
    assert fingerprints == [project_key.fingerprint]


def test_export_without_key_raises(keys_root: Path) -> None:
    with pytest.raises(gpg.KeyNotFoundError):
        gpg.export_public_key(keys_root=keys_root, owner=OWNER, project="never-created")


@pytest.mark.parametrize(
    ("owner", "project"),
    [("..", "x"), ("alice", ".."), ("a/b", "x"), ("alice", "x y"), ("alice", "a<b>")],
)
def test_unsafe_names_are_refused(keys_root: Path, owner: str, project: str) -> None:
    with pytest.raises(ValueError):
        gpg.generate_project_key(
            keys_root=keys_root, owner=owner, project=project, sign_domain=DOMAIN
        )


def test_unsigned_rpm_fails_signature_check(unsigned_rpm: Path, trusting_rpmdb: Path) -> None:
    checked = rpm_checksig(unsigned_rpm, dbpath=trusting_rpmdb)
    assert checked.returncode != 0
    assert "Signature" not in checked.stdout


def test_signed_rpm_verifies_with_project_key(
    unsigned_rpm: Path, trusting_rpmdb: Path, project_key: gpg.KeyInfo, keys_root: Path
) -> None:
    started = time.monotonic()
    gpg.sign_rpms(keys_root=keys_root, owner=OWNER, project=PROJECT, rpm_paths=[unsigned_rpm])
    print(f"sign_rpms took {time.monotonic() - started:.3f}s")
    checked = rpm_checksig(unsigned_rpm, dbpath=trusting_rpmdb)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    short_id = project_key.key_id[-8:].lower()
    assert f"Header V4 RSA/SHA256 Signature, key ID {short_id}: OK" in checked.stdout


def test_hash_algorithm_is_used(
    unsigned_rpm: Path, trusting_rpmdb: Path, project_key: gpg.KeyInfo, keys_root: Path
) -> None:
    gpg.sign_rpms(
        keys_root=keys_root,
        owner=OWNER,
        project=PROJECT,
        rpm_paths=[unsigned_rpm],
        hash_algo="sha512",
    )
    checked = rpm_checksig(unsigned_rpm, dbpath=trusting_rpmdb)
    assert "RSA/SHA512 Signature" in checked.stdout, checked.stdout


def test_other_projects_key_is_not_trusted(
    unsigned_rpm: Path, trusting_rpmdb: Path, other_key: gpg.KeyInfo, keys_root: Path
) -> None:
    gpg.sign_rpms(
        keys_root=keys_root, owner=OTHER_OWNER, project=OTHER_PROJECT, rpm_paths=[unsigned_rpm]
    )
    checked = rpm_checksig(unsigned_rpm, dbpath=trusting_rpmdb)
    assert checked.returncode != 0
    assert f"key ID {other_key.key_id[-8:].lower()}: NOKEY" in checked.stdout


def test_resigning_replaces_the_signature(
    unsigned_rpm: Path,
    trusting_rpmdb: Path,
    project_key: gpg.KeyInfo,
    other_key: gpg.KeyInfo,
    keys_root: Path,
) -> None:
    # Forks re-sign copied RPMs with the fork's key.
    gpg.sign_rpms(
        keys_root=keys_root, owner=OTHER_OWNER, project=OTHER_PROJECT, rpm_paths=[unsigned_rpm]
    )
    gpg.sign_rpms(keys_root=keys_root, owner=OWNER, project=PROJECT, rpm_paths=[unsigned_rpm])
    checked = rpm_checksig(unsigned_rpm, dbpath=trusting_rpmdb)
    assert checked.returncode == 0, checked.stdout


def test_sign_failure_raises_with_rpmsign_stderr(
    project_key: gpg.KeyInfo, keys_root: Path, tmp_path: Path
) -> None:
    not_an_rpm = tmp_path / "broken-1-1.noarch.rpm"
    not_an_rpm.write_text("this is not an rpm\n")
    with pytest.raises(gpg.SigningError) as caught:
        gpg.sign_rpms(keys_root=keys_root, owner=OWNER, project=PROJECT, rpm_paths=[not_an_rpm])
    assert "not signing corrupt package" in caught.value.stderr
    assert "not signing corrupt package" in str(caught.value)


def test_sign_without_key_raises(keys_root: Path, unsigned_rpm: Path) -> None:
    with pytest.raises(gpg.KeyNotFoundError):
        gpg.sign_rpms(keys_root=keys_root, owner="nobody", project="x", rpm_paths=[unsigned_rpm])


def test_unknown_hash_algorithm_is_refused(keys_root: Path, unsigned_rpm: Path) -> None:
    with pytest.raises(ValueError):
        gpg.sign_rpms(
            keys_root=keys_root,
            owner=OWNER,
            project=PROJECT,
            rpm_paths=[unsigned_rpm],
            hash_algo="md5",
        )


def test_permission_walk_tolerates_entries_that_vanish(tmp_path: Path) -> None:
    """gpg-agent unlinks its sockets (and gpg its lock files) while a session tidies up."""
    home = tmp_path / "home"
    home.mkdir()
    names = [f"S.gpg-agent.{i}" for i in range(20000)]
    for name in names:
        (home / name).touch(mode=0o644)
    started = threading.Event()

    def remove_from_the_end() -> None:
        started.set()
        for name in reversed(names):
            (home / name).unlink()

    remover = threading.Thread(target=remove_from_the_end)
    remover.start()
    started.wait()
    try:
        gpg._restrict_permissions(home)
    finally:
        remover.join()
    assert not list(home.iterdir())


def test_signing_burst_stops_every_agent_before_the_lock_is_released(
    keys_root: Path, project_key: gpg.KeyInfo, other_key: gpg.KeyInfo, tmp_path: Path
) -> None:
    """Many short sessions on two projects at once: each ends with its agent gone."""
    rpms = {OWNER: build_rpm(tmp_path / "a")[0], OTHER_OWNER: build_rpm(tmp_path / "b")[0]}
    projects = {OWNER: PROJECT, OTHER_OWNER: OTHER_PROJECT}
    deadline = time.monotonic() + 15

    def sign_in_a_loop(owner: str) -> list[int]:
        survivors = []
        for _ in range(15):
            if time.monotonic() > deadline:
                break
            with gpg.signing_session(
                keys_root=keys_root, owner=owner, project=projects[owner]
            ) as signer:
                signer.sign([rpms[owner]])
                pid = gpg.agent_pid(signer.home)
            assert pid is not None
            if gpg.process_alive(pid):
                survivors.append(pid)
        return survivors

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(sign_in_a_loop, [OWNER, OTHER_OWNER, OWNER, OTHER_OWNER]))
    assert results == [[], [], [], []]


def test_signing_home_lives_in_the_worker_temp_dir_while_signing(
    keys_root: Path, project_key: gpg.KeyInfo, unsigned_rpm: Path, settings
):
    """Where the worker-file sweep looks for it (named with the signing process's pid), and
    gone once the session ends."""
    temp_dir = Path(settings.WORKER_TEMP_DIR)
    with gpg.signing_session(keys_root=keys_root, owner=OWNER, project=PROJECT) as signer:
        signer.sign([unsigned_rpm])
        session_dir = signer.home.parent
        assert session_dir.parent == temp_dir
        assert session_dir.name.startswith(f"coprsite-gpg-{os.getpid()}-")
    assert not session_dir.exists()
