"""The one place that says what a valid name is: projects, packages, dirs, chroots, owners.

Names become URL parts and directory names under RESULTS_ROOT, KEYS_ROOT and
UPLOADS_ROOT, so they are checked where they enter (model validators, used by the admin,
the web forms, both APIs and the services' full_clean) with Copr's rules, narrowed to ASCII:
a Cyrillic project name would pass Copr's `\\w` and then break key generation.
Existing rows are not touched; only new input is refused.
"""

import re

from django.core.exceptions import ValidationError
from django.utils.deconstruct import deconstructible

from apps.core.errors import InvalidForm

MAX_NAME_LENGTH = 100  # Copr's String(100) for project, package and group names
PROJECT_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
PACKAGE_NAME_RE = re.compile(r"[-+_.a-zA-Z0-9]+")
OWNER_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
CHROOT_NAME_RE = re.compile(r"[a-z0-9][a-z0-9_.+-]*")
DIR_SUFFIX_RE = {"custom": re.compile(r"[A-Za-z0-9_.-]+"), "pr": re.compile(r"[0-9]+")}
# A name that is only dots would be the directory itself or its parent.
DOT_NAMES = frozenset({".", ".."})

PROJECT_CHARACTERS_MESSAGE = "Name must contain only letters, digits, underscores, dashes and dots."
PROJECT_NUMBER_MESSAGE = "Project's name can not be just number."
PACKAGE_CHARACTERS_MESSAGE = f"Please enter a valid package name in ^{PACKAGE_NAME_RE.pattern}$"
PACKAGE_LENGTH_MESSAGE = "Too long package name"
NUL_MESSAGE = "NUL characters are not allowed."
# PostgreSQL's bigint: a larger offset or id cannot even be sent to the database.
MAX_BIGINT = 2**63 - 1


def project_name_errors(name) -> list[str]:
    if not isinstance(name, str):
        return ["The name must be a string."]
    if "\x00" in name:
        return [NUL_MESSAGE]
    if not PROJECT_NAME_RE.fullmatch(name):
        return [PROJECT_CHARACTERS_MESSAGE]
    if name in DOT_NAMES:
        return [f"'{name}' is not a valid project name."]
    if name.isdigit():
        return [PROJECT_NUMBER_MESSAGE]
    return []  # the length is the field's max_length (100, as Copr's column)


def package_name_errors(name) -> list[str]:
    if not isinstance(name, str):
        return ["The package name must be a string."]
    if "\x00" in name:
        return [NUL_MESSAGE]
    if len(name) > MAX_NAME_LENGTH:
        return [PACKAGE_LENGTH_MESSAGE]
    if not PACKAGE_NAME_RE.fullmatch(name) or name in DOT_NAMES:
        return [PACKAGE_CHARACTERS_MESSAGE]
    return []


def owner_name_errors(name) -> list[str]:
    """Users and @groups (without the `@`): the first directory level of every tree."""
    if not isinstance(name, str):
        return ["The name must be a string."]
    if "\x00" in name:
        return [NUL_MESSAGE]
    if not OWNER_NAME_RE.fullmatch(name) or name in DOT_NAMES:
        return ["Use letters, digits, '.', '_' and '-' only (not only dots)."]
    return []


def chroot_name_errors(name) -> list[str]:
    if not isinstance(name, str) or not CHROOT_NAME_RE.fullmatch(name):
        return ["A chroot name is lower-case letters, digits, '.', '_', '+' and '-' only."]
    return []


def dirname_errors(project_name: str, dirname) -> list[str]:
    """Copr's project_dirname: `<project>`, `<project>:custom:<suffix>` or `<project>:pr:<id>`."""
    if dirname == project_name:
        return []
    if isinstance(dirname, str):
        name, _, rest = dirname.partition(":")
        kind, _, suffix = rest.partition(":")
        if name == project_name and kind in DIR_SUFFIX_RE and DIR_SUFFIX_RE[kind].fullmatch(suffix):
            return []
    return [
        f"Please use directory format {project_name}:custom:<SUFFIX_WITHOUT_SPACES> "
        f"(or {project_name}:pr:<ID> for pull requests)."
    ]


@deconstructible
class NameValidator:
    """A model/form field validator over one of the `*_errors` rules above."""

    rules = {
        "project": project_name_errors,
        "package": package_name_errors,
        "owner": owner_name_errors,
        "chroot": chroot_name_errors,
    }

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def __call__(self, value) -> None:
        errors = self.rules[self.kind](value)
        if errors:
            raise ValidationError(errors, code="invalid_name")

    def __eq__(self, other) -> bool:
        return isinstance(other, NameValidator) and other.kind == self.kind


validate_project_name = NameValidator("project")
validate_package_name = NameValidator("package")
validate_owner_name = NameValidator("owner")
validate_chroot_name = NameValidator("chroot")


def text_errors(value) -> list[str]:
    """Free text (descriptions, instructions): a string, without NUL characters."""
    if not isinstance(value, str):
        return [f"Expected text, got {json_type(value)}."]
    if "\x00" in value:
        return [NUL_MESSAGE]
    return []


def as_list(value, name: str = "value") -> list[str]:
    """A JSON list, or text separated by spaces, commas or newlines (as Copr's forms join)."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [item for item in value.replace(",", " ").split() if item]
    if isinstance(value, list | tuple):
        if not all(isinstance(item, str | int) and not isinstance(item, bool) for item in value):
            raise InvalidForm({name: ["Expected a list of texts."]})
        return [str(item).strip() for item in value if str(item).strip()]
    raise InvalidForm({name: [f"Expected a list of names, got {json_type(value)}."]})


def json_type(value) -> str:
    names = {dict: "an object", list: "a list", bool: "a boolean", int: "a number"}
    return names.get(type(value), "a number" if isinstance(value, float) else "null")


# The fields of both APIs that hold a name, and those that hold a list of names. In JSON a
# name is text: a number or a boolean is refused, never turned into a name like `-1`.
NAME_FIELDS = frozenset(
    {"owner", "ownername", "name", "projectname", "packagename", "package_name", "chrootname"}
    | {"project_dirname", "pypi_package_name", "gem_name"}
)
NAME_LIST_FIELDS = frozenset({"chroots", "exclude_chroots", "chroot_denylist"})


def name_type_errors(data) -> dict[str, list[str]]:
    """{field: [message]} for the name fields of a request body that are not text.

    Null is left to the caller (APIv3 drops it, API v1 says the field may not be null); a
    list of names may also be given as one text (comma- or space-separated)."""
    errors = {}
    for field in sorted(NAME_FIELDS & data.keys()):
        value = data[field]
        if value is not None and not isinstance(value, str):
            errors[field] = [f"Expected text, got {json_type(value)}."]
    for field in sorted(NAME_LIST_FIELDS & data.keys()):
        value = data[field]
        if value is None or isinstance(value, str):
            continue
        if not isinstance(value, list):
            errors[field] = [f"Expected a list of names, got {json_type(value)}."]
            continue
        for index, item in enumerate(value):
            if not isinstance(item, str):
                errors[field] = [f"Expected a list of texts; item {index} is {json_type(item)}."]
                break
    return errors
