"""Failure reasons for specs that need macros the builder lacks."""

from __future__ import annotations

from builders.failures import fedora_macros, macros_in_output, reason_for_missing_macros
from builders.sources.common import last_error_line


def test_macros_in_traced_commands_errors_and_warnings_but_not_formats_or_sections() -> None:
    lines = [
        "+ date +%Y%m%d",
        "+ printf '%s\\n' x",
        "+ /usr/lib/rpm/rpmuncompress -x /build/SOURCES/%{pypi_source tinypkg}",
        "warning: line 3: Possible unexpanded macro in: Release:        %autorelease",
        "error: %changelog entries must start with *",
        "plain output mentioning %not_traced",
    ]

    assert macros_in_output(lines) == ["pypi_source", "autorelease"]


def test_fedora_macros_of_a_spec_skip_its_own_definitions() -> None:
    spec = "%global pypi_name tiny\nSource: %{pypi_source}\n%build\n%py3_build\n%{pypi_name}\n"

    assert fedora_macros(spec) == ["pypi_source", "py3_build"]


def test_reason_names_the_packages_then_the_first_macros() -> None:
    reason = reason_for_missing_macros(["autorelease", "pyproject_wheel", "foo", "bar", "baz"])

    assert reason == (
        "the spec needs macros this builder does not have (Fedora's pyproject-rpm-macros, "
        "rpmautospec): %autorelease, %pyproject_wheel, %foo, %bar and 1 more"
    )


def test_a_tool_error_that_goes_on_on_the_next_line_is_kept_whole() -> None:
    output = (
        "Cloning into '/build/src/hello'...\n"
        "fatal: unable to connect to 127.0.0.1:\n"
        "127.0.0.1[0: 127.0.0.1]: errno=Connection refused\n"
    )
    assert last_error_line(output, 128) == (
        "fatal: unable to connect to 127.0.0.1: 127.0.0.1[0: 127.0.0.1]: errno=Connection refused"
    )
