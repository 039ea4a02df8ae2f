"""Tests for builders/srpm.py: header reading on real packages built by rpmbuild."""

from __future__ import annotations

from pathlib import Path

import pytest

from builders.srpm import (
    BadRpm,
    NotAnSrpm,
    read_rpm_nevra,
    read_srpm_header,
    srpm_build_requires,
)
from tests.builders.srpm_factory import make_binary_rpm, make_srpm


def test_reads_name_epoch_version_release(tmp_path: Path) -> None:
    srpm = make_srpm(tmp_path, name="tool", version="2.5", release="3", epoch=4)

    header = read_srpm_header(srpm)

    assert header["filename"] == "tool-2.5-3.src.rpm"
    assert (header["name"], header["epoch"], header["version"], header["release"]) == (
        "tool",
        4,
        "2.5",
        "3",
    )
    assert header["exclusivearch"] == header["excludearch"] == header["buildarch"] == []


def test_arch_tags_show_up(tmp_path: Path) -> None:
    srpm = make_srpm(
        tmp_path,
        exclusive_arch=["x86_64", "aarch64"],
        exclude_arch=["s390x"],
        build_arch="noarch",
    )

    header = read_srpm_header(srpm)

    assert header["exclusivearch"] == ["x86_64", "aarch64"]
    assert header["excludearch"] == ["s390x"]
    # BuildArch is its own header tag; the SRPM's arch field only says where it was built.
    assert header["buildarch"] == ["noarch"]
    assert header["epoch"] is None


def test_single_exclusive_arch_is_a_list(tmp_path: Path) -> None:
    header = read_srpm_header(make_srpm(tmp_path, exclusive_arch=["ppc64le"]))

    assert header["exclusivearch"] == ["ppc64le"]


def test_build_requires_keep_their_versions(tmp_path: Path) -> None:
    srpm = make_srpm(tmp_path, build_requires=["gcc", "make >= 4.3", "(zlib-devel or zlib-ng)"])

    # rpm stores dependencies sorted by name.
    assert srpm_build_requires(srpm) == ["(zlib-devel or zlib-ng)", "gcc", "make >= 4.3"]


def test_a_text_file_is_not_an_rpm(tmp_path: Path) -> None:
    fake = tmp_path / "fake.src.rpm"
    fake.write_text("#!/bin/sh\necho I am not a package\n")

    with pytest.raises(NotAnSrpm, match=r"^fake\.src\.rpm is not an RPM file$"):
        read_srpm_header(fake)


def test_an_empty_file_is_not_an_rpm(tmp_path: Path) -> None:
    empty = tmp_path / "empty.src.rpm"
    empty.write_bytes(b"")

    with pytest.raises(NotAnSrpm, match="is not an RPM file"):
        read_srpm_header(empty)


def test_a_binary_rpm_is_not_a_source_rpm(tmp_path: Path) -> None:
    rpm = make_binary_rpm(tmp_path)

    with pytest.raises(NotAnSrpm) as raised:
        read_srpm_header(rpm)

    assert str(raised.value) == f"{rpm.name} is a binary RPM, not a source RPM"


@pytest.mark.parametrize("keep", [200, 3000, -100])
def test_a_truncated_srpm_is_refused(tmp_path: Path, keep: int) -> None:
    data = make_srpm(tmp_path).read_bytes()
    cut = tmp_path / "cut.src.rpm"
    cut.write_bytes(data[:keep])

    with pytest.raises(NotAnSrpm, match=r"^cut\.src\.rpm is truncated: \d+ bytes"):
        read_srpm_header(cut)


def test_a_corrupted_payload_is_refused(tmp_path: Path) -> None:
    data = bytearray(make_srpm(tmp_path).read_bytes())
    data[-50:-40] = b"0123456789"
    damaged = tmp_path / "damaged.src.rpm"
    damaged.write_bytes(bytes(data))

    with pytest.raises(NotAnSrpm, match="payload does not match the digest"):
        read_srpm_header(damaged)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(NotAnSrpm, match="gone.src.rpm cannot be read: No such file"):
        read_srpm_header(tmp_path / "gone.src.rpm")


def test_nevra_of_binary_and_source_packages(tmp_path: Path) -> None:
    rpm = make_binary_rpm(tmp_path, version="3.1", epoch=2)
    srpm = make_srpm(tmp_path, version="3.1", epoch=2)

    assert read_rpm_nevra(rpm) == {
        "name": "hello",
        "epoch": 2,
        "version": "3.1",
        "release": "1",
        "arch": "x86_64",
    }
    assert read_rpm_nevra(srpm)["arch"] == "src"


def test_nevra_refuses_non_rpms(tmp_path: Path) -> None:
    fake = tmp_path / "x.rpm"
    fake.write_bytes(b"\xed\xab\xee\xdb" + b"\0" * 200)

    with pytest.raises(BadRpm):
        read_rpm_nevra(fake)
