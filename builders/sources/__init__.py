"""Source methods of the builder, one module each; METHOD_NAMES is their registry.

A method module is standard-library Python, because the runner copies this package into
the sandbox. It has two halves:

- on the runner (host): `prepare(helper, source)` puts the job's inputs in place and runs the
  method's sandbox commands with `helper.run(command, params)` (`builders.providers.Helper`);
  an optional `makes_srpm(source)` says when the source is a ready SRPM (default: never);
- in the sandbox: `COMMANDS`, name -> function, reading their parameters from
  `common.PARAMS` and failing with `common.fail(reason)`.

Shared code: `common` (running tools, spec to SRPM) and `checkout` (git and svn clones).
See docs/source-methods.md for adding a method.
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

# The registry: one line per method, named as the portal's source type (Copr's names).
METHOD_NAMES = (
    "link",  # an SRPM or spec URL
    "upload",  # an uploaded SRPM or spec
    "scm",  # git or svn, with rpkg, tito or make_srpm
    "distgit",  # a dist-git repository and its lookaside cache
    "pypi",  # a Python project, with pyp2spec or pyp2rpm
    "rubygems",  # a gem, with gem2rpm
    "custom",  # the user's script
)
METHODS: dict[str, ModuleType] = {
    name: import_module(f"{__name__}.{name}") for name in METHOD_NAMES
}
SHARED_MODULES = ("common", "checkout")


def sandbox_commands() -> dict:
    """Every command the sandbox entry point runs, from the shared modules and the methods."""
    commands: dict = {}
    for module in [import_module(f"{__name__}.{name}") for name in SHARED_MODULES]:
        commands.update(module.COMMANDS)
    for module in METHODS.values():
        commands.update(getattr(module, "COMMANDS", {}))
    return commands
