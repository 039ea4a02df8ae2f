"""PyPI sources against a fake index on 127.0.0.1: pyp2spec (the default) and pyp2rpm."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import rpmfile

from builders.protocol import JobSpec
from builders.runner import run_job
from tests.builders.helpers import LocalServer
from tests.builders.pypi_helpers import publish
from tests.builders.tools import builder_tools_dir

SourceJob = Callable[..., JobSpec]


@pytest.fixture
def fake_pypi(http_server: LocalServer) -> LocalServer:
    """tinypkg 0.3 and 0.4 on a fake PyPI (0.4 is the latest)."""
    base = http_server.url("").rstrip("/")
    publish(http_server.directory, base, "tinypkg", "0.3")
    publish(http_server.directory, base, "tinypkg", "0.4")
    return http_server


def pypi_source(index: LocalServer, **fields: object) -> dict:
    return {
        "type": "pypi",
        "pypi_package_name": "tinypkg",
        "pypi_index": index.url("").rstrip("/"),
        "builder_tools": str(builder_tools_dir()),
        **fields,
    }


def srpm_files(srpm: Path) -> dict[str, bytes]:
    with rpmfile.open(str(srpm)) as package:
        return {m.name: package.extractfile(m).read() for m in package.getmembers()}


def test_pyp2spec_makes_the_srpm_of_the_latest_version(
    fake_pypi: LocalServer, source_job: SourceJob, result_dir: Path
) -> None:
    result = run_job(source_job(pypi_source(fake_pypi)))

    assert result.state == "succeeded", result.failure_reason
    assert (result.srpm["name"], result.srpm["version"]) == ("python-tinypkg", "0.4")
    files = srpm_files(result_dir / result.srpm["filename"])
    assert sorted(files) == ["python-tinypkg.spec", "tinypkg-0.4.tar.gz"]
    assert b"%pyproject_wheel" in files["python-tinypkg.spec"]
    assert (
        files["tinypkg-0.4.tar.gz"]
        == (fake_pypi.directory / "packages/source/t/tinypkg/tinypkg-0.4.tar.gz").read_bytes()
    )
    assert "/pypi/tinypkg/json" in fake_pypi.requests


def test_pyp2spec_with_a_version(
    fake_pypi: LocalServer, source_job: SourceJob, result_dir: Path
) -> None:
    result = run_job(source_job(pypi_source(fake_pypi, pypi_package_version="0.3")))

    assert result.state == "succeeded", result.failure_reason
    assert result.srpm["version"] == "0.3"
    assert "/pypi/tinypkg/0.3/json" in fake_pypi.requests


def test_pyp2rpm_makes_the_srpm(
    fake_pypi: LocalServer, source_job: SourceJob, result_dir: Path
) -> None:
    source = pypi_source(fake_pypi, spec_generator="pyp2rpm", pypi_package_version="0.3")

    result = run_job(source_job(source))

    assert result.state == "succeeded", result.failure_reason
    assert (result.srpm["name"], result.srpm["version"]) == ("python-tinypkg", "0.3")
    files = srpm_files(result_dir / result.srpm["filename"])
    assert sorted(files) == ["python-tinypkg.spec", "tinypkg-0.3.tar.gz"]
    assert b"%py3_build" in files["python-tinypkg.spec"]


def test_unknown_package_fails_clearly(
    fake_pypi: LocalServer, source_job: SourceJob, result_dir: Path
) -> None:
    result = run_job(source_job(pypi_source(fake_pypi, pypi_package_name="nosuchpkg")))

    assert result.state == "failed"
    assert result.failure_reason == (
        "pyp2spec failed: Fatal exception occurred: Package `nosuchpkg` was not found on PyPI"
    )


@pytest.mark.parametrize(
    ("generator", "reason"),
    [
        (
            "pyp2spec",
            "the spec needs macros this builder does not have (Fedora's pyproject-rpm-macros, "
            "python-rpm-macros, rpmautospec): %autorelease, %pypi_source, "
            "%pyproject_buildrequires, %pyproject_wheel and 5 more",
        ),
        (
            "pyp2rpm",
            "the spec needs macros this builder does not have (Fedora's python-rpm-macros): "
            "%pypi_source, %python_provide, %py3_build, %py3_install and 2 more",
        ),
    ],
)
def test_rpm_build_names_the_fedora_macros_this_builder_lacks(
    fake_pypi: LocalServer,
    source_job: SourceJob,
    rpm_job: Callable[..., JobSpec],
    result_dir: Path,
    tmp_path: Path,
    generator: str,
    reason: str,
) -> None:
    made = run_job(source_job(pypi_source(fake_pypi, spec_generator=generator)))
    assert made.state == "succeeded", made.failure_reason
    srpm = tmp_path / made.srpm["filename"]
    srpm.write_bytes((result_dir / made.srpm["filename"]).read_bytes())

    result = run_job(rpm_job(srpm))

    assert (result.state, result.failure_reason) == ("failed", reason)
