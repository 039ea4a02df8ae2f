"""Build tiny RPMs, check their signatures and install them with the real dnf, for tests."""

import os
import shutil
import subprocess
from pathlib import Path

HELLO_OUTPUT = "hello from coprsite"

# AutoReqProv off and a /bin/sh script: the package installs into an empty installroot
# with no dependency to resolve, and the test runs the script with the host's /bin/sh.
_SPEC = """\
Name: {name}
Version: {version}
Release: {release}
Summary: Test package for coprsite
License: MIT
BuildArch: noarch
AutoReqProv: no

%description
Prints a fixed line; used to test signing, createrepo and dnf.

%install
mkdir -p %{{buildroot}}/usr/bin
cat > %{{buildroot}}/usr/bin/{name} <<'EOF'
#!/bin/sh
echo "{message}"
EOF
chmod 0755 %{{buildroot}}/usr/bin/{name}

%files
/usr/bin/{name}
"""


def build_rpm(
    workdir: Path,
    *,
    name: str = "hello",
    version: str = "1.0",
    release: str = "1",
    message: str = HELLO_OUTPUT,
    with_srpm: bool = False,
) -> list[Path]:
    """Build `name` with rpmbuild; return [binary rpm] or [binary rpm, src.rpm]."""
    topdir = Path(workdir) / f"rpmbuild-{name}-{version}-{release}"
    spec = topdir / f"{name}.spec"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(_SPEC.format(name=name, version=version, release=release, message=message))
    subprocess.run(
        ["rpmbuild", "-ba" if with_srpm else "-bb", "--define", f"_topdir {topdir}", str(spec)],
        check=True,
        capture_output=True,
        text=True,
    )
    built = [topdir / "RPMS" / "noarch" / f"{name}-{version}-{release}.noarch.rpm"]
    if with_srpm:
        built.append(topdir / "SRPMS" / f"{name}-{version}-{release}.src.rpm")
    return built


def place_build(chroot_dir: Path, build_id: int, rpms: list[Path]) -> Path:
    """Copy RPMs into a Copr build dir `<chroot_dir>/<build_id:08d>-<pkgname>/`."""
    package_name = rpms[0].name.rsplit("-", 2)[0]
    build_dir = Path(chroot_dir) / f"{build_id:08d}-{package_name}"
    build_dir.mkdir(parents=True, exist_ok=True)
    for rpm in rpms:
        shutil.copy2(rpm, build_dir)
    return build_dir


def rpm_checksig(rpm_path: Path, *, dbpath: Path) -> subprocess.CompletedProcess[str]:
    """Run `rpm -Kv` against a private rpmdb, requiring a valid signature (not only digests).

    Plain `rpm -K` reports an unsigned package as OK; `_pkgverify_level signature` makes a
    missing or unknown signature an error, which is what dnf's gpgcheck enforces.
    """
    return subprocess.run(
        [
            "rpm",
            "--dbpath",
            str(dbpath),
            "--define",
            "_pkgverify_level signature",
            "-Kv",
            str(rpm_path),
        ],
        capture_output=True,
        text=True,
        env=_c_locale(),
        check=False,
    )


def import_public_key(pubkey_path: Path, *, dbpath: Path) -> None:
    """Import an armored public key into a private rpmdb (created if missing)."""
    Path(dbpath).mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["rpm", "--dbpath", str(dbpath), "--import", str(pubkey_path)],
        check=True,
        capture_output=True,
        text=True,
    )


def write_repo_file(
    repo_file_dir: Path, *, repo_id: str, baseurl: str, gpgkey: str, gpgcheck: bool = True
) -> Path:
    """Write a Copr-style .repo file (the keys the frontend serves) into its own reposdir."""
    repo_file_dir = Path(repo_file_dir)
    repo_file_dir.mkdir(parents=True, exist_ok=True)
    path = repo_file_dir / f"{repo_id.replace(':', '-')}.repo"
    path.write_text(
        f"[{repo_id}]\n"
        f"name=Copr repo for {repo_id}\n"
        f"baseurl={baseurl}\n"
        "type=rpm-md\n"
        "skip_if_unavailable=True\n"
        f"gpgcheck={int(gpgcheck)}\n"
        f"gpgkey={gpgkey}\n"
        "repo_gpgcheck=0\n"
        "enabled=1\n"
        "enabled_metadata=1\n"
    )
    return path


def dnf_install_command(installroot: Path, repo_file_dir: Path, package: str) -> list[str]:
    """The dnf command line that installs from our repos only; see test_toolchain_dnf.py."""
    return [
        "dnf",
        "--installroot",
        str(installroot),
        # Only the .repo files in this directory; the host's repos never take part.
        f"--setopt=reposdir={repo_file_dir}",
        # An empty installroot has no *-release package to take the version from.
        "--releasever",
        "43",
        "--nodocs",
        # Host plugins (copr, versionlock, ...) must not change what the test sees.
        "--noplugins",
        "--setopt=install_weak_deps=False",
        # The Copr repo file says skip_if_unavailable=True; a broken repo must fail loudly
        # here instead of ending in "No match for argument".
        "--setopt=*.skip_if_unavailable=False",
        "-y",
        "install",
        package,
    ]


def dnf_install_into(
    installroot: Path, repo_file_dir: Path, package: str
) -> subprocess.CompletedProcess[str]:
    """Install `package` into an installroot with the real dnf; never raises on failure."""
    return subprocess.run(
        dnf_install_command(installroot, repo_file_dir, package),
        capture_output=True,
        text=True,
        env=_c_locale(),
        timeout=300,
        check=False,
    )


def _c_locale() -> dict[str, str]:
    # Tests match English messages ("is not signed", "signatures OK").
    return {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
