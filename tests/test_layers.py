"""The import contracts (.importlinter) hold on the tree and catch a wrong-way import."""

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(cwd: Path, *contracts: str) -> subprocess.CompletedProcess:
    selected = [arg for name in contracts for arg in ("--contract", name)]
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *selected],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    """The packages and the contracts, copied: a test may add a module there."""
    for package in ("apps", "builders", "coprsite"):
        shutil.copytree(
            ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_the_contracts_list_no_exceptions():
    """A wrong-way import is fixed, not whitelisted."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    contracts = [name for name in config.sections() if name.startswith("importlinter:contract:")]
    assert {name.rsplit(":", 1)[1] for name in contracts} == {"layers", "builders", "acyclic"}
    for name in contracts:
        assert "ignore_imports" not in config[name], name
        assert config[name].get("exhaustive", "True") == "True", name


def test_the_tree_keeps_every_contract():
    """What `make lint` runs."""
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout


def test_a_lower_app_importing_a_higher_one_is_reported(tree_copy):
    (tree_copy / "apps" / "core" / "wrong_way.py").write_text(
        '"""Deliberately wrong: core may not know the APIs."""\n\nimport apps.api.v3  # noqa\n'
    )
    result = lint_imports(tree_copy, "layers")
    assert result.returncode != 0
    assert "apps.core.wrong_way -> apps.api.v3" in result.stdout


def test_builds_importing_repos_is_reported(tree_copy):
    # Repositories publish what builds made: builds ask for a publish by the actor's name.
    (tree_copy / "apps" / "builds" / "wrong_way.py").write_text(
        '"""Wrong: builds ask repos by name."""\n\nimport apps.repos.services  # noqa\n'
    )
    result = lint_imports(tree_copy, "layers")
    assert result.returncode != 0
    assert "apps.builds.wrong_way -> apps.repos.services" in result.stdout


def test_django_imported_in_builders_is_reported(tree_copy):
    (tree_copy / "builders" / "wrong_way.py").write_text(
        '"""Deliberately wrong: builders run without Django."""\n\nimport django  # noqa\n'
    )
    result = lint_imports(tree_copy, "builders")
    assert result.returncode != 0
    assert "builders.wrong_way -> django" in result.stdout


def test_a_cycle_between_modules_is_reported(tree_copy):
    # Two modules importing each other make a cycle.
    (tree_copy / "builders" / "wrong_a.py").write_text('"""A."""\n\nimport builders.wrong_b\n')
    (tree_copy / "builders" / "wrong_b.py").write_text('"""B."""\n\nimport builders.wrong_a\n')
    result = lint_imports(tree_copy, "acyclic")
    assert result.returncode != 0
    assert "No cycles are allowed in builders" in result.stdout
