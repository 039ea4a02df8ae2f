"""The portal's source methods, one module each; METHOD_NAMES is their registry.

Each module holds one method's form fields, checks, APIv3 keys and job source
(`base.SourceMethod`); its builder half is the module of the same name in
`builders.sources`. See docs/source-methods.md for adding a method.
"""

from importlib import import_module

from apps.core.errors import ServiceError
from apps.packages.sources.base import SourceMethod

# A package that has no source yet; not a method, but a type a package can have.
UNSET = "unset"

# The registry: one line per method, in the order of the new-build page's tabs.
METHOD_NAMES = (
    "upload",
    "link",
    "scm",
    "pypi",
    "rubygems",
    "custom",
    "distgit",
)
METHODS: dict[str, SourceMethod] = {
    name: import_module(f"{__name__}.{name}").METHOD for name in METHOD_NAMES
}

# Source types a package can keep (an upload is one build's file, not a default source).
PACKAGE_SOURCE_TYPES = (*(name for name, m in METHODS.items() if m.package_source), UNSET)


def check_source(source_type: str, source_json: dict) -> None:
    """Raise ServiceError with a message a packager understands when the source is unusable.

    Used by build_submit and by the package services, so a package can only store a
    source that a build would accept. The method's module holds the checks.
    """
    if source_type != UNSET and source_type not in METHODS:
        known = ", ".join(sorted([*METHODS, UNSET]))
        raise ServiceError(f"Unsupported source type '{source_type}' (use one of: {known}).")
    if not isinstance(source_json, dict):
        raise ServiceError("The source settings must be a JSON object.")
    if source_type == UNSET:
        raise ServiceError("This package has no source: set one before building it.")
    METHODS[source_type].check(source_json)


def source_field(source_type: str) -> str:
    """The form field a source problem is reported under (Copr's names)."""
    method = METHODS.get(source_type)
    return method.error_field if method else "source"
