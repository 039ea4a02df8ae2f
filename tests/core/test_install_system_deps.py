"""scripts/install-system-deps: what it tells a newcomer, as root and not, on Debian/Ubuntu.

The machine's tools are hidden by a PATH that holds only the shell utilities the script
itself uses; apt-get, where the script gets that far, is a stand-in that records its calls
(the real one would install packages on the test machine).
"""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-system-deps"
UTILITIES = ("bash", "env", "awk", "paste", "cat", "id", "mktemp", "grep", "head", "sleep", "rm")


def debian_like() -> bool:
    try:
        release = Path("/etc/os-release").read_text()
    except OSError:
        return False
    return any(word in release for word in ("ID=debian", "ID=ubuntu", "ID_LIKE=debian"))


pytestmark = pytest.mark.skipif(not debian_like(), reason="checks the Debian/Ubuntu wording")


@pytest.fixture
def bare_path() -> Path:
    """A PATH directory with the script's own utilities and none of the tools it checks.

    Outside pytest's tmp_path, which only root may enter: another user runs from it too.
    """
    base = Path(tempfile.mkdtemp(prefix="install-system-deps-"))
    base.chmod(0o755)
    directory = base / "bin"
    directory.mkdir()
    # A copy: the checkout itself may be in a directory only root can enter.
    shutil.copy(SCRIPT, base / SCRIPT.name)
    for name in UTILITIES:
        (directory / name).symlink_to(shutil.which(name))
    yield directory
    shutil.rmtree(base)


def fake_apt_get(directory: Path, body: str) -> Path:
    calls = directory.parent / "apt-calls"
    (directory / "apt-get").write_text(f'#!/bin/bash\necho "$*" >> {calls}\n{body}\n')
    (directory / "apt-get").chmod(0o755)
    return calls


def run(path: Path, *, as_user: bool = False, **env: str) -> subprocess.CompletedProcess:
    argv = [str(path.parent / SCRIPT.name)]
    if as_user:
        argv = [
            shutil.which("setpriv"),
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--",
            *argv,
        ]
    return subprocess.run(
        argv,
        env={"PATH": str(path), "LANG": "C.UTF-8", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="switching to another user needs root")
def test_as_another_user_it_names_what_is_missing_and_the_command(bare_path):
    ran = run(bare_path, as_user=True)
    assert ran.returncode == 1
    assert "missing system tools: rpmbuild rpm rpmsign createrepo_c bwrap" in ran.stderr
    assert "Install them as root (or run make as root)" in ran.stderr
    assert "apt-get install -y --no-install-recommends rpm createrepo-c bubblewrap" in ran.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="the install path runs only as root")
def test_as_root_a_failed_install_is_reported_without_asking_for_root(bare_path):
    calls = fake_apt_get(bare_path, 'echo "E: Unable to locate package rpm" >&2; exit 100')
    ran = run(bare_path)
    assert ran.returncode == 1
    assert "the package manager failed (exit 100)" in ran.stderr
    assert "as root" not in ran.stderr
    assert "apt-get install -y --no-install-recommends rpm createrepo-c" in ran.stderr
    assert calls.read_text().splitlines()[0] == "-q -o DPkg::Lock::Timeout=900 update"


@pytest.mark.skipif(os.geteuid() != 0, reason="the install path runs only as root")
def test_as_root_it_waits_for_another_apt_holding_the_lists_lock(bare_path):
    # Busy for the first two updates, as apt-get update answers while another apt runs.
    log = bare_path.parent / "apt-calls"
    busy = "E: Could not get lock /var/lib/apt/lists/lock. It is held by process 4242 (apt-get)"
    calls = fake_apt_get(
        bare_path,
        f'if [ "$4" = update ] && [ "$(grep -c update {log})" -lt 3 ]; then\n'
        f'  echo "{busy}" >&2; exit 100\nfi',
    )
    ran = run(bare_path)
    assert "another package manager holds apt's lock (held by process 4242" in ran.stderr
    assert "waiting up to 900s" in ran.stderr
    updates = [line for line in calls.read_text().splitlines() if line.endswith("update")]
    assert len(updates) == 3
    assert any(" install -y " in line for line in calls.read_text().splitlines())
