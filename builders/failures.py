"""Why a job stopped, as one line a person can act on, and how to read it from tool output."""

from __future__ import annotations

import re
from collections.abc import Sequence

# Long enough for a compiler message with its file and line, or a tool's error after a hint
# of what to set (a clone from this machine), short enough for a table cell.
REASON_LIMIT = 400

_BAD_EXIT = re.compile(r"^error: Bad exit status from \S+ \((%\w+)\)")
_STAGE_START = re.compile(r"^Executing\((%\w+)\):")
_MISSING_DEPENDENCY = re.compile(r"^\s+(.+?) is needed by \S+$")
_ERROR_WORD = re.compile(r"\b(error|fatal|failed|cannot|No such file|not found)\b", re.IGNORECASE)


# A macro left as it was written (`%name`, `%{name ...}`, `%{?name}`) in a traced command, an
# error, or rpm's "Possible unexpanded macro" warning. Four characters at least, lower case:
# shorter ones are printf and date formats (`%s`, `%Y`), not macros.
_MACRO_USE = re.compile(r"%\{?\??!?([a-z_][a-z0-9_]{3,})")
# Spec sections look like macros in rpmbuild's messages ("%changelog entries must ...").
_SPEC_SECTIONS = frozenset(
    {
        *("package", "description", "prep", "generate_buildrequires", "conf", "build"),
        *("install", "check", "clean", "files", "changelog", "verifyscript"),
        *("pretrans", "pre", "post", "preun", "postun", "posttrans"),
        *("triggerin", "triggerun", "triggerpostun", "filetriggerin", "filetriggerun"),
        *("transfiletriggerin", "transfiletriggerun"),
    }
)
_SPEC_DEFINITION = re.compile(r"^\s*%(?:global|define)\s+([A-Za-z_]\w*)", re.MULTILINE)
# Named in a failure reason; the rest are counted.
_MACROS_NAMED = 4
# Where Fedora keeps the macros its spec generators and packaging guidelines use.
FEDORA_MACRO_PACKAGES = (
    (("pyproject_", "_pyproject_"), "pyproject-rpm-macros"),
    (("py3_", "py_", "python3_", "python_", "pypi_"), "python-rpm-macros"),
    (("autorelease", "autochangelog"), "rpmautospec"),
)


class BuildFailure(Exception):
    """The job failed; `reason` is the one-line failure reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BuildTimeout(BuildFailure):
    """The job ran past its time limit."""


class BuildCanceled(Exception):
    """The job was stopped on request; `reason` says so."""

    def __init__(self, reason: str = "canceled by the user") -> None:
        super().__init__(reason)
        self.reason = reason


def shorten(text: str, limit: int = REASON_LIMIT) -> str:
    """Collapse whitespace to one line and cut it to `limit` characters."""
    line = " ".join(text.split())
    if len(line) <= limit:
        return line
    return line[: limit - 1].rstrip() + "…"


def _is_noise(line: str) -> bool:
    # `+ cmd` lines are the shell's xtrace; they show what ran, not what went wrong.
    stripped = line.strip()
    return not stripped or stripped.startswith("+ ") or stripped.startswith("warning:")


def _stage_lines(lines: Sequence[str], error_index: int, stage: str) -> list[str]:
    """Lines printed by the failing stage: from its `Executing(...)` line to the error."""
    start = 0
    for index in range(error_index - 1, -1, -1):
        match = _STAGE_START.match(lines[index])
        if match and match.group(1) == stage:
            start = index + 1
            break
    return [line for line in lines[start:error_index] if not _is_noise(line)]


def _meaningful(stage_lines: list[str]) -> str:
    """The first error-looking lines of a stage, else its last lines."""
    errors = [line.strip() for line in stage_lines if _ERROR_WORD.search(line)]
    chosen = errors[:2] if errors else [line.strip() for line in stage_lines[-2:]]
    return "; ".join(chosen)


def _missing_dependencies(lines: Sequence[str]) -> list[str]:
    """The entries of rpmbuild's "Failed build dependencies" list, if it printed one."""
    try:
        start = lines.index("error: Failed build dependencies:")
    except ValueError:
        return []
    missing = []
    for line in lines[start + 1 :]:
        match = _MISSING_DEPENDENCY.match(line)
        if not match:
            break
        missing.append(match.group(1))
    return missing


def reason_from_rpmbuild(lines: Sequence[str], exit_code: int) -> str:
    """Turn rpmbuild's output (most recent lines) into a failure reason."""
    missing = _missing_dependencies(lines)
    if missing:
        return shorten("missing build dependencies: " + ", ".join(missing))
    for index in range(len(lines) - 1, -1, -1):
        match = _BAD_EXIT.match(lines[index])
        if match:
            stage = match.group(1)
            detail = _meaningful(_stage_lines(lines, index, stage))
            return shorten(f"{stage} failed: {detail or 'the script exited with an error'}")
    error_lines = [line.strip() for line in lines if line.startswith("error: ")]
    if error_lines:
        # rpmbuild prints each problem once as it happens and again in a summary; the
        # first one is the cause, the later ones are usually its consequences.
        detail = error_lines[0].removeprefix("error: ")
        follow = _following_lines(lines, error_lines[0])
        return shorten(f"rpmbuild failed (exit {exit_code}): {detail}{follow}")
    tail = [line.strip() for line in lines if line.strip()]
    last = tail[-1] if tail else "no output"
    return shorten(f"rpmbuild failed (exit {exit_code}): {last}")


def _following_lines(lines: Sequence[str], error_line: str) -> str:
    """Indented lines right after an error (the file list of 'unpackaged files' and such)."""
    index = [line.strip() for line in lines].index(error_line)
    details = []
    for line in lines[index + 1 : index + 4]:
        if not line.startswith((" ", "\t")) or not line.strip():
            break
        details.append(line.strip())
    return (" " + " ".join(details)) if details else ""


def macros_in_output(lines: Sequence[str]) -> list[str]:
    """Macro names that appear unexpanded in rpmbuild's traced commands, errors and warnings."""
    found: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not stripped.startswith(("+ ", "error:", "warning:")) and "unexpanded macro" not in line:
            continue
        for name in _MACRO_USE.findall(stripped):
            if name not in found and name not in _SPEC_SECTIONS:
                found.append(name)
    return found


def reason_for_missing_macros(undefined: Sequence[str]) -> str:
    """Say which macros the builder lacks and which Fedora packages define them."""
    packages: list[str] = []
    for name in undefined:
        for prefixes, package in FEDORA_MACRO_PACKAGES:
            if name.startswith(prefixes) and package not in packages:
                packages.append(package)
    source = f" (Fedora's {', '.join(sorted(packages))})" if packages else ""
    names = ", ".join(f"%{name}" for name in undefined[:_MACROS_NAMED])
    if len(undefined) > _MACROS_NAMED:
        names += f" and {len(undefined) - _MACROS_NAMED} more"
    return shorten(f"the spec needs macros this builder does not have{source}: {names}")


def fedora_macros(spec_text: str) -> list[str]:
    """Macros of FEDORA_MACRO_PACKAGES that a spec uses, in order of first use."""
    prefixes = tuple(prefix for group, _ in FEDORA_MACRO_PACKAGES for prefix in group)
    defined = set(_SPEC_DEFINITION.findall(spec_text))
    found: list[str] = []
    for name in _MACRO_USE.findall(spec_text):
        if name.startswith(prefixes) and name not in found and name not in defined:
            found.append(name)
    return found
