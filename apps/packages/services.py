"""Every write to packages: add, edit, reset, and the webhook history.

Building a package and deleting one with its builds are writes to builds
(`apps.builds.package_builds`).
"""

import logging

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from apps.core.errors import Conflict, FieldErrors, InvalidForm, PermissionDenied, ServiceError
from apps.packages import sources
from apps.packages.models import Package, SourceType, WebhookHistory
from apps.projects.models import Project
from apps.projects.permissions import can_edit

logger = logging.getLogger(__name__)

# Webhook history: the newest calls kept per project, the newest with a wrong secret per
# project (enough to show an owner that something knocks), and the calls the whole table
# keeps rows of.
WEBHOOK_HISTORY_PER_PROJECT = 100
WEBHOOK_ANONYMOUS_KEPT = 10
WEBHOOK_HISTORY_MAX = 100_000
HISTORY_DELETE_CHUNK = 1000  # ids per DELETE when a long history is first trimmed
ANONYMOUS_CALL_OUTCOME = "rejected (403): BAD_UUID: the webhook secret in the URL is wrong"
# Settings besides the source that package_edit may change.
EDITABLE_FIELDS = frozenset({"webhook_rebuild", "max_builds", "timeout", "chroot_denylist"})


def package_add(
    *,
    user,
    project: Project,
    name: str,
    source_type: str,
    source_json: dict,
    webhook_rebuild: bool = False,
    max_builds: int | None = None,
    timeout: int | None = None,
    chroot_denylist: list[str] | None = None,
    errors: FieldErrors | None = None,
) -> Package:
    """Create a package with its default source; nothing is created when a field is wrong."""
    check_can_edit(user, project)
    errors = errors if errors is not None else FieldErrors()
    package = Package(
        project=project,
        name=name,
        source_type=source_type,
        source_json=source_with_name(source_type, source_json, name),
        webhook_rebuild=bool(webhook_rebuild),
        max_builds=max_builds or None,  # Copr: 0 means "keep every build"
        timeout=timeout or None,  # Copr: 0 means "the default"
        chroot_denylist=errors.check("chroot_denylist", checked_denylist, chroot_denylist) or [],
    )
    if isinstance(name, str) and project.packages.filter(name=name).exists():
        raise Conflict(f"Package {name} already exists in {project.full_name}.")
    check_package(package, errors)
    try:
        with transaction.atomic():
            package.save()
    except IntegrityError as error:
        raise Conflict(f"Package {name} already exists in {project.full_name}.") from error
    logger.info("package %s added to %s by %s", name, project.full_name, user)
    return package


def package_edit(
    *,
    user,
    package: Package,
    source_type: str | None = None,
    source_json: dict | None = None,
    errors: FieldErrors | None = None,
    **fields,
) -> Package:
    """Change a package; `source_json` is merged into the stored one (Copr's edit semantics).

    Changing the source type starts from an empty source_json, so keys of the old type
    do not linger.
    """
    check_can_edit(user, package.project)
    unknown = set(fields) - EDITABLE_FIELDS
    if unknown:
        raise ServiceError(f"Unknown package setting(s): {', '.join(sorted(unknown))}.")
    if source_type is not None and source_type != package.source_type:
        merged = dict(source_json or {})
        package.source_type = source_type
    else:
        merged = {**package.source_json, **(source_json or {})}
    package.source_json = source_with_name(package.source_type, merged, package.name)
    if "webhook_rebuild" in fields:
        package.webhook_rebuild = bool(fields["webhook_rebuild"])
    if "max_builds" in fields:
        package.max_builds = fields["max_builds"] or None
    if "timeout" in fields:
        package.timeout = fields["timeout"] or None
    errors = errors if errors is not None else FieldErrors()
    if "chroot_denylist" in fields:
        package.chroot_denylist = (
            errors.check("chroot_denylist", checked_denylist, fields["chroot_denylist"]) or []
        )
    try:
        check_package(package, errors)
    except ServiceError:
        package.refresh_from_db()  # the caller's object must not keep the rejected values
        raise
    package.save()
    return package


def package_reset(*, user, package: Package) -> Package:
    """Forget the package's source and settings; its name and builds stay (Copr's reset)."""
    check_can_edit(user, package.project)
    package.source_type = SourceType.UNSET
    package.source_json = {}
    package.webhook_rebuild = False
    package.max_builds = None
    package.timeout = None
    package.chroot_denylist = []
    package.save()
    return package


# --- checks -------------------------------------------------------------------------------


def check_can_edit(user, project: Project) -> None:
    if not can_edit(user, project):
        name = user.username if user and user.is_authenticated else "anonymous"
        raise PermissionDenied(
            f"User '{name}' is not allowed to change packages of {project.full_name}."
        )


def check_package(package: Package, errors: FieldErrors | None = None) -> None:
    """Every problem of the package at once (with the caller's `errors`), Copr's shape."""
    errors = errors if errors is not None else FieldErrors()
    if package.source_type not in sources.PACKAGE_SOURCE_TYPES:
        known = ", ".join(sources.PACKAGE_SOURCE_TYPES)
        errors.add(
            "source_type",
            f"Unsupported source type '{package.source_type}' for a package (use one of: {known}).",
        )
    elif package.source_type != SourceType.UNSET:
        errors.check(
            sources.source_field(package.source_type),
            sources.check_source,
            package.source_type,
            package.source_json,
        )
    try:
        package.full_clean(exclude=["project"], validate_unique=False)
    except ValidationError as error:
        for field, messages in error.message_dict.items():
            if field not in errors.errors:
                errors.add("package_name" if field == "name" else field, *messages)
    errors.raise_if_any()


def checked_denylist(denylist) -> list[str]:
    if denylist is None:
        return []
    if isinstance(denylist, str):
        denylist = denylist.split()  # Copr's form field is a space-separated list
    if not isinstance(denylist, list) or not all(isinstance(p, str) for p in denylist):
        raise InvalidForm({"chroot_denylist": ["Expected a list of chroot names or patterns."]})
    return [p.strip() for p in denylist if p.strip()]


def source_with_name(source_type: str, source_json: dict, name: str) -> dict:
    """The source as the package keeps it (a DistGit source names its repository after it)."""
    if not isinstance(source_json, dict):
        raise ServiceError("The source settings must be a JSON object.")
    method = sources.METHODS.get(source_type)
    return method.with_package_name(source_json, name) if method else dict(source_json)


# --- webhooks ------------------------------------------------------------------------------


def webhook_record(
    *,
    project: Project,
    provider: str,
    event: str,
    delivery: str,
    user_agent: str,
    outcome: str,
    secret_valid: bool = True,
) -> WebhookHistory:
    """Keep a received webhook with what it did (or why it did nothing), and drop the
    oldest beyond the history's bounds in the same transaction.

    Anyone can POST to a webhook URL, and project ids are sequential: without bounds each
    call would be a row for ever. Calls with a wrong secret in the URL are anonymous: they
    have their own, small bound, so they can neither grow the table nor push a project's
    real deliveries out of its history.
    """
    if not secret_valid:
        outcome = ANONYMOUS_CALL_OUTCOME
    with transaction.atomic():
        row = WebhookHistory.objects.create(
            project=project,
            provider=provider,
            event=event[:50],
            webhook_uuid=delivery[:100],
            user_agent=user_agent[:200],
            outcome=outcome,
        )
        of_project = WebhookHistory.objects.filter(project=project)
        if secret_valid:
            history_trim(
                of_project.exclude(outcome=ANONYMOUS_CALL_OUTCOME), WEBHOOK_HISTORY_PER_PROJECT
            )
        else:
            history_trim(of_project.filter(outcome=ANONYMOUS_CALL_OUTCOME), WEBHOOK_ANONYMOUS_KEPT)
        # The whole table, a backstop for many projects at once: only rows of the last
        # WEBHOOK_HISTORY_MAX calls stay. Ids are sequential, so this is a range of the
        # primary key, not a count of the table (an offset scan took 76 ms at 100,000 rows).
        WebhookHistory.objects.filter(pk__lte=row.pk - WEBHOOK_HISTORY_MAX).delete()
    return row


def history_trim(rows, keep: int) -> None:
    """Delete all but the newest `keep` of one project's `rows`.

    The ids are read whole and sorted here: a project has about `keep` rows, found by its
    index. A range of ids (`id < oldest kept AND project_id = …`) is planned by PostgreSQL
    as a walk of the primary key through every older row of every project.
    """
    ids = sorted(rows.order_by().values_list("pk", flat=True), reverse=True)
    for start in range(keep, len(ids), HISTORY_DELETE_CHUNK):
        WebhookHistory.objects.filter(pk__in=ids[start : start + HISTORY_DELETE_CHUNK]).delete()
