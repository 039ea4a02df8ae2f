"""Build real, tiny SRPMs (and binary RPMs) with rpmbuild for tests."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HELLO_C = '#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n'
DEFAULT_BUILD_SCRIPT = "gcc -o %{name} hello.c"

_SPEC = """\
Name: {name}
Version: {version}
Release: {release}%{{?dist}}
{epoch_line}Summary: A tiny test package
License: MIT
Source0: hello.c
{tags}
%description
A tiny package built by the coprsite tests.

%prep
{setup}cp %{{SOURCE0}} .

%build
{build_script}

%install
install -D -m 0755 %{{name}} %{{buildroot}}%{{_bindir}}/%{{name}}

%files
%{{_bindir}}/%{{name}}
"""


def write_spec(
    directory: Path,
    *,
    name: str = "hello",
    version: str = "1.0",
    release: str = "1",
    epoch: int | None = None,
    build_script: str = DEFAULT_BUILD_SCRIPT,
    build_requires: Sequence[str] = (),
    exclusive_arch: Sequence[str] | None = None,
    exclude_arch: Sequence[str] | None = None,
    build_arch: str | None = None,
    auto_req_prov: bool = True,
    setup: bool = False,
) -> Path:
    """Write `<name>.spec` and hello.c into `directory`; %build must leave ./<name>.

    `setup` builds in a directory of its own made by %setup, as real packages do (on
    Fedora's buildroot only those get -debuginfo and -debugsource subpackages).
    """
    tags = [f"BuildRequires: {requirement}" for requirement in build_requires]
    if exclusive_arch:
        tags.append("ExclusiveArch: " + " ".join(exclusive_arch))
    if exclude_arch:
        tags.append("ExcludeArch: " + " ".join(exclude_arch))
    if build_arch:
        tags.append(f"BuildArch: {build_arch}")
    if not auto_req_prov:
        # No automatic libc dependency: the package installs into an empty dnf installroot.
        tags.append("AutoReqProv: no")
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "hello.c").write_text(HELLO_C)
    spec = directory / f"{name}.spec"
    spec.write_text(
        _SPEC.format(
            name=name,
            version=version,
            release=release,
            epoch_line=f"Epoch: {epoch}\n" if epoch is not None else "",
            tags="\n".join(tags),
            build_script=build_script,
            setup="%setup -q -c -T\n" if setup else "",
        )
    )
    return spec


def _rpmbuild(spec: Path, mode: str, topdir: Path) -> None:
    subprocess.run(
        [
            "rpmbuild",
            mode,
            "--nodeps",
            "--define",
            f"_topdir {topdir}",
            "--define",
            f"_sourcedir {spec.parent}",
            str(spec),
        ],
        check=True,
        capture_output=True,
    )


def make_srpm(tmp_path: Path, name: str = "hello", **spec_options: Any) -> Path:
    """Build `<name>-<version>-<release>.src.rpm` under tmp_path and return its path.

    Options are those of `write_spec` (version, release, epoch, build_script,
    build_requires, exclusive_arch, exclude_arch, build_arch, auto_req_prov, setup).
    """
    work = tmp_path / f"srpm-{name}"
    spec = write_spec(work / "src", name=name, **spec_options)
    _rpmbuild(spec, "-bs", work / "top")
    (srpm,) = (work / "top" / "SRPMS").glob("*.src.rpm")
    return srpm


def make_binary_rpm(tmp_path: Path, name: str = "hello", **spec_options: Any) -> Path:
    """Build the binary RPM of the same tiny package on the host (trusted test input)."""
    work = tmp_path / f"rpm-{name}"
    spec = write_spec(work / "src", name=name, **spec_options)
    _rpmbuild(spec, "-bb", work / "top")
    (rpm,) = (work / "top" / "RPMS").glob("*/*.rpm")
    return rpm
