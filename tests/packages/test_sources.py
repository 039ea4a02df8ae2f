"""The source-method registries: every source type has its portal and its builder module."""

import importlib
import shutil
import subprocess

from apps.packages import sources as portal
from apps.packages.models import Package, SourceType
from apps.packages.sources.base import SourceForm, SourceMethod
from builders import sources as builder


def source_type_names() -> set[str]:
    """The source types a package can have, as its model field offers them."""
    choices = Package._meta.get_field("source_type").choices
    return {name for name, _ in choices} - {SourceType.UNSET}


def missing_halves(types: set[str], portal_names, builder_names) -> list[str]:
    problems = [
        f"{name}: no module in apps/packages/sources/" for name in types - set(portal_names)
    ]
    problems += [f"{name}: no module in builders/sources/" for name in types - set(builder_names)]
    problems += [f"{name}: no portal module" for name in set(builder_names) - set(portal_names)]
    problems += [f"{name}: no builder module" for name in set(portal_names) - set(builder_names)]
    return problems


def test_every_source_type_has_a_portal_and_a_builder_module():
    assert source_type_names() >= set(SourceType.values) - {SourceType.UNSET}
    assert missing_halves(source_type_names(), portal.METHOD_NAMES, builder.METHOD_NAMES) == []


def test_a_half_added_method_is_reported():
    # "cargo" in the portal's registry only: what adding one of the two modules would leave.
    types = source_type_names() | {"cargo"}
    assert missing_halves(types, (*portal.METHOD_NAMES, "cargo"), builder.METHOD_NAMES) == [
        "cargo: no module in builders/sources/",
        "cargo: no builder module",
    ]


def test_each_portal_module_defines_its_method():
    for name, method in portal.METHODS.items():
        assert isinstance(method, SourceMethod)
        assert method.name == name
        assert issubclass(method.form, SourceForm) and method.form.source_type == name
        assert type(method).check is not SourceMethod.check, f"{name} has no checks"


def test_each_builder_module_prepares_its_source_and_names_its_commands_once():
    seen: dict[str, str] = {}
    modules = {
        name: importlib.import_module(f"builders.sources.{name}") for name in ("common", "checkout")
    }
    for name, module in {**modules, **builder.METHODS}.items():
        if name in builder.METHODS:
            assert callable(module.prepare), f"builders/sources/{name}.py has no prepare()"
        for command in getattr(module, "COMMANDS", {}):
            assert command not in seen, f"{command} is defined by {seen.get(command)} and {name}"
            seen[command] = name
    assert set(builder.sandbox_commands()) == set(seen)


def test_the_sandbox_package_runs_on_the_standard_library_alone(tmp_path):
    # What the runner does: a copy of the package, the system's python -I, nothing else.
    shutil.copytree(
        builder.__path__[0], tmp_path / "sources", ignore=shutil.ignore_patterns("__pycache__")
    )
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); import sources; "
        "print(' '.join(sorted(sources.sandbox_commands())))"
    )
    process = subprocess.run(
        ["/usr/bin/python3", "-I", "-B", "-c", code], capture_output=True, text=True, check=False
    )
    assert process.returncode == 0, process.stderr
    assert process.stdout.split() == sorted(builder.sandbox_commands())
    assert "django" not in process.stderr
