"""The portal's source methods, one module each; METHOD_NAMES is their registry.

Each module holds one method's form fields, checks, APIv3 keys and job source
(`base.SourceMethod`); its builder half is the module of the same name in
`builders.sources`. See docs/source-methods.md for adding a method.
"""

from importlib import import_module

from apps.packages.sources.base import SourceMethod

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
