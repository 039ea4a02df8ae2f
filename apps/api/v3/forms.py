"""Copr's APIv3 inputs turned into service arguments: project settings, build options, sources."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from apps.api.v3.base import as_bool, as_int, as_text
from apps.builds.services import BuildOptions
from apps.core.errors import FieldErrors, InvalidForm, ServiceError
from apps.core.names import as_list, json_type
from apps.packages.sources import METHODS
from apps.projects.models import BootstrapChoice, IsolationChoice

# Copr's project keys whose value is a list on our side.
PROJECT_LIST_KEYS = ("additional_repos", "runtime_dependencies", "packit_forge_projects_allowed")
PROJECT_BOOL_KEYS = (
    "unlisted_on_hp", "enable_net", "persistent", "auto_prune", "follow_fedora_branching",
    "devel_mode", "multilib", "module_hotfixes", "fedora_review", "appstream",
)  # fmt: skip
PROJECT_TEXT_KEYS = ("description", "instructions", "homepage", "contact", "bootstrap_image")
BUILD_ISOLATIONS = ("unchanged", "default", "nspawn", "simple")
BUILD_BOOTSTRAPS = ("unchanged", "default", "off", "on", "image")
MAX_DELETE_AFTER_DAYS = 720
# Each source method's APIv3 keys, Copr's defaults and copr-cli's other names for them
# (`SourceMethod.api_*`); copr-cli's names are renamed whatever the type, as Copr does.
SOURCE_KEY_RENAMES = {old: new for m in METHODS.values() for old, new in m.api_renames.items()}
SOURCE_KEYS = {name: m.api_keys for name, m in METHODS.items() if m.api_keys}
SOURCE_DEFAULTS = {name: m.api_defaults for name, m in METHODS.items() if m.api_keys}


def project_settings(data: dict, errors: FieldErrors) -> dict:
    """Project fields from Copr's add/edit keys; only keys that were sent (nulls are dropped).

    A bad value is recorded in `errors` (the caller raises them all at once) and left out.
    """
    fields = {}
    if "repos" in data:
        data = {**data, "additional_repos": data["repos"]}
    for key in PROJECT_TEXT_KEYS:
        if key in data:
            fields[key] = errors.check(key, as_text, data[key], key)
    for key in PROJECT_BOOL_KEYS:
        if key in data:
            fields[key] = errors.check(key, as_bool, data[key], name=key)
    for key in PROJECT_LIST_KEYS:
        if key in data:
            fields[key] = errors.check(key, as_list, data[key], key)
    if fields.get("packit_forge_projects_allowed"):
        fields["packit_forge_projects_allowed"] = [
            item.split("://", 1)[-1] for item in fields["packit_forge_projects_allowed"]
        ]
    if "bootstrap" in data:
        fields["bootstrap"] = errors.check(
            "bootstrap", choice, data["bootstrap"], "bootstrap", BootstrapChoice.values
        )
    if data.get("use_bootstrap_container") is not None and "bootstrap" not in data:
        on = errors.check(
            "use_bootstrap_container", as_bool, data["use_bootstrap_container"],
            name="use_bootstrap_container",
        )  # fmt: skip
        fields["bootstrap"] = "on" if on else "off"
    if "isolation" in data:
        fields["isolation"] = errors.check(
            "isolation", choice, data["isolation"], "isolation", IsolationChoice.values
        )
    if "repo_priority" in data:
        fields["repo_priority"] = errors.check(
            "repo_priority", as_int, data["repo_priority"], "repo_priority", minimum=1
        )
    if "delete_after_days" in data:
        fields["delete_after"] = errors.check(
            "delete_after_days", delete_after, data["delete_after_days"]
        )
    errors.check("storage", check_storage, data.get("storage"))
    return {key: value for key, value in fields.items() if key not in errors.errors}


def choice(value, name: str, allowed) -> str:
    if not isinstance(value, str) or value not in allowed:
        shown = value if isinstance(value, str) else json_type(value)
        raise InvalidForm({name: [f"'{shown}' is not a valid choice for this field"]})
    return value


def delete_after(days) -> object:
    """Copr's delete_after_days: -1 or empty keeps the project; N deletes it in N days."""
    number = as_int(days, "delete_after_days", minimum=-1, maximum=MAX_DELETE_AFTER_DAYS)
    if number is None or number == -1:
        return None
    tomorrow = timezone.now() + timedelta(days=number + 1)
    return tomorrow.replace(hour=0, minute=0, second=0, microsecond=0)


def check_storage(storage) -> None:
    """Copr names the stores `backend` and `pulp`; an instance has one (REPOSITORY_STORE)."""
    available = "pulp" if settings.REPOSITORY_STORE == "pulp" else "backend"
    if storage not in (None, "", available):
        raise InvalidForm(
            {"storage": [f"'{storage}' is not available here; only '{available}' is."]}
        )


def build_options(data: dict, errors: FieldErrors) -> BuildOptions:
    """Copr's common build options (chroots, exclude_chroots, timeout, enable_net, ...).

    Bad values are recorded in `errors` and left at their defaults.
    """
    mock_settings = {}
    for key, allowed in (("isolation", BUILD_ISOLATIONS), ("bootstrap", BUILD_BOOTSTRAPS)):
        if data.get(key) is not None:
            mock_settings[key] = errors.check(key, choice, data[key], key, allowed)
    dirname = data.get("project_dirname") or None
    if dirname is not None and not isinstance(dirname, str):
        errors.add("project_dirname", f"Expected text, got {json_type(dirname)}.")
        dirname = None
    return BuildOptions(
        chroots=errors.check("chroots", as_list, data.get("chroots"), "chroots") or None,
        exclude_chroots=errors.check(
            "exclude_chroots", as_list, data.get("exclude_chroots"), "exclude_chroots"
        )
        or [],
        enable_net=errors.check(
            "enable_net", as_bool, data.get("enable_net"), default=None, name="enable_net"
        ),
        timeout=errors.check("timeout", as_int, data.get("timeout"), "timeout", minimum=1),
        background=bool(
            errors.check("background", as_bool, data.get("background"), name="background")
        ),
        project_dirname=dirname,
        after_build_id=errors.check(
            "after_build_id", as_int, data.get("after_build_id"), "after_build_id", minimum=1
        ),
        with_build_id=errors.check(
            "with_build_id", as_int, data.get("with_build_id"), "with_build_id", minimum=1
        ),
        # A bad value was recorded in `errors`; the build is not created then.
        **{key: value for key, value in mock_settings.items() if value is not None},
    )


def source_json(source_type: str, data: dict, *, partial: bool = False) -> dict:
    """Copr's source_json for a source type from the request keys (copr-cli's names too).

    With `partial` (package edit) only the keys that were sent are returned, so the stored
    ones are kept; otherwise Copr's defaults fill the rest.
    """
    if source_type not in SOURCE_KEYS:
        raise ServiceError(f"Unsupported package source type {source_type}")
    method = METHODS[source_type]
    renamed = {SOURCE_KEY_RENAMES.get(key, key): value for key, value in data.items()}
    renamed = method.api_input(renamed)
    result = {} if partial else dict(method.api_defaults)
    result.update({k: renamed[k] for k in method.api_keys if k in renamed})
    return method.api_normalized(result)


PACKAGE_SETTING_KEYS = ("webhook_rebuild", "max_builds", "timeout", "chroot_denylist")


def package_settings(data: dict, errors: FieldErrors) -> dict:
    """max_builds, timeout, webhook_rebuild and chroot_denylist, when sent."""
    fields = {}
    if "webhook_rebuild" in data:
        fields["webhook_rebuild"] = errors.check(
            "webhook_rebuild", as_bool, data["webhook_rebuild"], name="webhook_rebuild"
        )
    if "max_builds" in data:
        fields["max_builds"] = errors.check(
            "max_builds", as_int, data["max_builds"], "max_builds", minimum=0, maximum=100
        )
    if "timeout" in data:
        fields["timeout"] = errors.check("timeout", as_int, data["timeout"], "timeout", minimum=0)
    if "chroot_denylist" in data:
        fields["chroot_denylist"] = errors.check(
            "chroot_denylist", as_list, data["chroot_denylist"], "chroot_denylist"
        )
    return fields
