"""The builder-tools venv (pyp2spec, pyp2rpm, tito) that PyPI and tito source tests need."""

from __future__ import annotations

import functools
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _ensure(directory: str) -> str:
    """'' when `directory` holds the tools (installing them if needed), else why not."""
    process = subprocess.run(
        [str(REPO_ROOT / "scripts" / "builder-tools"), directory],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if process.returncode == 0:
        return ""
    last = (process.stderr.strip().splitlines() or ["no output"])[-1]
    return f"scripts/builder-tools could not create {directory} (`make builder-tools`): {last}"


def builder_tools_dir(directory: str | Path | None = None) -> Path:
    """`directory`, else settings.BUILDER_TOOLS_DIR, created when missing.

    Skips the test, saying why, when the tools cannot be installed.

    `make test` installs the tools first, so the skip only happens when pytest runs alone
    on a machine that cannot reach PyPI.
    """
    from django.conf import settings

    directory = str(directory or settings.BUILDER_TOOLS_DIR)
    problem = _ensure(directory)
    if problem:
        pytest.skip(problem)
    return Path(directory)
