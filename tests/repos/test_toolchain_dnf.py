"""The toolchain proof: rpmbuild, sign, createrepo_c, then the real dnf installs with gpgcheck=1.

The dnf command that works on Debian 12 (dnf 4.14, rpm 4.18), as root, with nothing but our
repo (rpm_helpers.dnf_install_into builds it; the portal's end-to-end tests reuse it)::

    LC_ALL=C.UTF-8 dnf --installroot <installroot> \\
        --setopt=reposdir=<dir holding only our .repo file> \\
        --releasever 43 --nodocs --noplugins \\
        --setopt=install_weak_deps=False '--setopt=*.skip_if_unavailable=False' \\
        -y install hello

with a .repo file like the one Copr's frontend serves::

    [copr:localhost:group_copr-team:hello]
    name=Copr repo for copr:localhost:group_copr-team:hello
    baseurl=file:///.../results/@copr-team/hello/fedora-43-x86_64/
    type=rpm-md
    skip_if_unavailable=True
    gpgcheck=1
    gpgkey=file:///.../results/@copr-team/hello/pubkey.gpg
    repo_gpgcheck=0
    enabled=1
    enabled_metadata=1

Findings: --releasever is required (an empty installroot has no release package); dnf then
keeps its cache, logs and rpmdb inside the installroot, so no cachedir option is needed;
--forcearch is not needed for noarch (basearch is detected as x86_64); -y also accepts the
key import from gpgkey=. --noplugins, install_weak_deps=False and the skip_if_unavailable
override are not needed for this package but keep host plugins out and make a broken repo
fail with a clear "Failed to download metadata" instead of "No match for argument".
An http:// baseurl and gpgkey (python -m http.server over the same tree) work the same way.
dnf refuses an unsigned package with "Package <file> is not signed" and one signed by an
unknown key with "... not correct for this package" and "GPG check FAILED", exit code 1.
"""

import subprocess
from pathlib import Path

import pytest

from apps.repos import gpg
from apps.repos.createrepo import regenerate_repository
from tests.repos.rpm_helpers import (
    HELLO_OUTPUT,
    build_rpm,
    dnf_install_into,
    place_build,
    write_repo_file,
)

OWNER = "@copr-team"
PROJECT = "hello"
CHROOT = "fedora-43-x86_64"


@pytest.fixture(scope="module")
def keys_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def project_key(keys_root: Path) -> gpg.KeyInfo:
    """The key whose pubkey.gpg every repo file below points to."""
    return gpg.generate_project_key(
        keys_root=keys_root, owner=OWNER, project=PROJECT, sign_domain="example.org"
    )


@pytest.fixture(scope="module")
def hello_rpm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_rpm(tmp_path_factory.mktemp("rpms"))[0]


def publish(
    *,
    results_root: Path,
    keys_root: Path,
    project_key: gpg.KeyInfo,
    rpm: Path,
    sign_with: str | None,
    repo_file_dir: Path,
) -> None:
    """Do what the backend does after a build, then write the repo file a user downloads.

    Each test publishes into its own results root, so only the project name is shared.
    """
    project_dir = results_root / OWNER / PROJECT
    chroot_dir = project_dir / CHROOT
    chroot_dir.mkdir(parents=True)
    (project_dir / "pubkey.gpg").write_text(project_key.public_key)
    build_dir = place_build(chroot_dir, 1, [rpm])
    if sign_with is not None:
        gpg.sign_rpms(
            keys_root=keys_root,
            owner=OWNER,
            project=sign_with,
            rpm_paths=sorted(build_dir.glob("*.rpm")),
        )
    regenerate_repository(chroot_dir)
    write_repo_file(
        repo_file_dir,
        repo_id=f"copr:localhost:{OWNER.replace('@', 'group_')}:{PROJECT}",
        baseurl=chroot_dir.as_uri() + "/",
        gpgkey=(project_dir / "pubkey.gpg").as_uri(),
    )


def test_signed_package_installs_and_runs(
    keys_root: Path, project_key: gpg.KeyInfo, hello_rpm: Path, tmp_path: Path
) -> None:
    publish(
        results_root=tmp_path / "results",
        keys_root=keys_root,
        project_key=project_key,
        rpm=hello_rpm,
        sign_with=PROJECT,
        repo_file_dir=tmp_path / "repos",
    )
    installroot = tmp_path / "installroot"
    installed = dnf_install_into(installroot, tmp_path / "repos", "hello")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "Key imported successfully" in installed.stdout + installed.stderr
    ran = subprocess.run(
        [str(installroot / "usr" / "bin" / "hello")], capture_output=True, text=True, check=True
    )
    assert ran.stdout == f"{HELLO_OUTPUT}\n"


def test_unsigned_package_is_refused(
    keys_root: Path, project_key: gpg.KeyInfo, hello_rpm: Path, tmp_path: Path
) -> None:
    publish(
        results_root=tmp_path / "results",
        keys_root=keys_root,
        project_key=project_key,
        rpm=hello_rpm,
        sign_with=None,
        repo_file_dir=tmp_path / "repos",
    )
    installroot = tmp_path / "installroot"
    refused = dnf_install_into(installroot, tmp_path / "repos", "hello")
    assert refused.returncode != 0
    assert "hello-1.0-1.noarch.rpm is not signed" in refused.stdout + refused.stderr
    assert not (installroot / "usr" / "bin" / "hello").exists()


def test_package_signed_by_another_project_is_refused(
    keys_root: Path, project_key: gpg.KeyInfo, hello_rpm: Path, tmp_path: Path
) -> None:
    gpg.generate_project_key(
        keys_root=keys_root, owner=OWNER, project="intruder", sign_domain="example.org"
    )
    publish(
        results_root=tmp_path / "results",
        keys_root=keys_root,
        project_key=project_key,
        rpm=hello_rpm,
        sign_with="intruder",
        repo_file_dir=tmp_path / "repos",
    )
    installroot = tmp_path / "installroot"
    refused = dnf_install_into(installroot, tmp_path / "repos", "hello")
    assert refused.returncode != 0
    assert "GPG check FAILED" in refused.stdout + refused.stderr
    assert not (installroot / "usr" / "bin" / "hello").exists()
