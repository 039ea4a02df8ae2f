"""The task lifecycle is the bottom of the build flow: builds and repos import in one direction.

Data flows request -> service -> actor -> builder -> repo. The builds app may call repos (to
publish what it built); repos report back only through apps.builds.lifecycle, which imports
nothing of repos. Read from the source with `ast`, function-level imports included: an
import tucked into a function to dodge a circle is still the circle.
"""

import ast
from pathlib import Path

import apps

APPS_ROOT = Path(apps.__file__).parent
# What the repos app may use of builds: the rows, the lifecycle and what the lifecycle stands on.
REPOS_MAY_IMPORT = {
    "apps.builds.models",
    "apps.builds.states",
    "apps.builds.logs",
    "apps.builds.lifecycle",
}
# The lifecycle sends the scheduler's nudge with the actor it imports when sending; the
# actors module sits above the lifecycle (its actors run execution and services), so the
# walk below does not follow that edge.
# The lifecycle also records the bus announcements of a task's end (apps.builds.announce,
# which stands on the rows and states alone).
LIFECYCLE_MAY_IMPORT = (REPOS_MAY_IMPORT - {"apps.builds.lifecycle"}) | {
    "apps.builds.actors",
    "apps.builds.announce",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(APPS_ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_path(name: str) -> Path | None:
    base = APPS_ROOT.parent.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def app_modules(app: str) -> list[Path]:
    return sorted(p for p in (APPS_ROOT / app).rglob("*.py") if "migrations" not in p.parts)


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """The apps.* modules a file imports, each with whether the import is inside a function."""
    found = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                # `from apps.builds import services` imports the module apps.builds.services.
                for alias in child.names:
                    submodule = f"{child.module}.{alias.name}"
                    named = submodule if module_path(submodule) else child.module
                    found.append((named, in_function))
            nested = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            visit(child, nested)

    visit(ast.parse(path.read_text(), filename=str(path)), in_function=False)
    return [(name, inside) for name, inside in found if name.startswith("apps.")]


def in_app(name: str, app: str) -> bool:
    return name == f"apps.{app}" or name.startswith(f"apps.{app}.")


def test_the_lifecycle_stands_only_on_models_states_and_logs():
    lifecycle = APPS_ROOT / "builds" / "lifecycle.py"
    from_builds = {name for name, _ in imports_of(lifecycle) if in_app(name, "builds")}
    assert from_builds <= LIFECYCLE_MAY_IMPORT, from_builds - LIFECYCLE_MAY_IMPORT


def test_nothing_under_the_lifecycle_reaches_repos():
    seen, todo, reaching_repos = set(), ["apps.builds.lifecycle"], []
    while todo:
        name = todo.pop()
        if name in seen or name == "apps.builds.actors":
            continue
        seen.add(name)
        for imported, _ in imports_of(module_path(name)):
            if in_app(imported, "repos"):
                reaching_repos.append(f"{name} imports {imported}")
            elif in_app(imported, "builds") and module_path(imported):
                todo.append(imported)
    assert reaching_repos == []


def test_repos_import_from_builds_only_the_lifecycle_and_what_it_stands_on():
    wrong = [
        f"{module_name(path)} imports {name}"
        for path in app_modules("repos")
        for name, _ in imports_of(path)
        if in_app(name, "builds") and name not in REPOS_MAY_IMPORT
    ]
    assert wrong == []


def test_no_import_between_builds_and_repos_hides_in_a_function():
    hidden = [
        f"{module_name(path)} imports {name} inside a function"
        for app, other in (("builds", "repos"), ("repos", "builds"))
        for path in app_modules(app)
        for name, in_function in imports_of(path)
        if in_function and in_app(name, other)
    ]
    assert hidden == []
