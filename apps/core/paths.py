"""Where things live on disk: the Copr results layout under RESULTS_ROOT, keys, uploads.

Every path made from a user's name goes through `confined`: it is joined, resolved
(`os.path.realpath`, symlinks included) and must stay inside its owner's tree, so a name
such as `..` can never make a write or a delete land in another user's files (the idea of
Django's `safe_join`). Names are validated where they enter (apps.core.names); this is the
second wall, for rows that predate the rules and for anything that slipped through.
"""

import logging
import os
import shutil
from pathlib import Path

from django.conf import settings

from apps.core.errors import ServiceError

logger = logging.getLogger(__name__)


class PathEscape(ServiceError):
    """A path built from names would leave its owner's tree."""


def confined(root: str | Path, ownername: str, *parts: str) -> Path:
    """`root/ownername/parts...` resolved, or PathEscape if it is not strictly inside
    `root/ownername` (itself a direct child of `root`)."""
    base = os.path.realpath(root)
    owner_tree = os.path.realpath(os.path.join(base, ownername))
    if os.path.dirname(owner_tree) != base or owner_tree == base:
        raise PathEscape(f"The owner name '{ownername}' cannot be used as a directory name.")
    if not parts:
        return Path(owner_tree)
    path = os.path.realpath(os.path.join(owner_tree, *parts))
    if os.path.commonpath([owner_tree, path]) != owner_tree or path == owner_tree:
        raise PathEscape(f"'{'/'.join(parts)}' cannot be used as a directory of {ownername}.")
    return Path(path)


def results_path(ownername: str, *parts: str) -> Path:
    """A path in an owner's results tree (RESULTS_ROOT/<owner>/...), confined."""
    return confined(settings.RESULTS_ROOT, ownername, *parts)


def project_results_dir(ownername: str, project_dirname: str) -> Path:
    return results_path(ownername, project_dirname)


def chroot_results_dir(ownername: str, project_dirname: str, chroot_name: str) -> Path:
    return results_path(ownername, project_dirname, chroot_name)


def confined_rmtree(root: str | Path, ownername: str, *parts: str) -> bool:
    """Remove a directory of an owner's tree; a path that escapes is refused (logged, kept).

    Returns whether the path was confined (and so removed if it existed).
    """
    try:
        path = confined(root, ownername, *parts)
    except PathEscape as error:
        logger.error("refusing to remove %s/%s/%s: %s", root, ownername, "/".join(parts), error)
        return False
    shutil.rmtree(path, ignore_errors=True)
    return True


def results_url(relative: str = "") -> str:
    """The public URL of a path in the results tree: RESULTS_URL (the backend's results
    server when the roles run apart), else this site's own /results/."""
    base = settings.RESULTS_URL or f"{settings.PUBLIC_URL}/results"
    return f"{base}/{relative}"


def repository_url(relative: str = "") -> str:
    """Where published repositories are served (`<owner>/<dirname>/<chroot>/` below it): the
    results tree, or Pulp's content app on an instance with the Pulp store."""
    if settings.REPOSITORY_STORE == "pulp":
        return f"{settings.PULP_CONTENT_URL}/{relative}"
    return results_url(relative)


def devel_repository_url(ownername: str, dirname: str, chroot_name: str) -> str:
    """The devel-mode repository builds see: `<chroot>/devel/` in the results tree, the
    `<chroot>-devel` distribution in Pulp (Pulp has no subdirectories)."""
    if settings.REPOSITORY_STORE == "pulp":
        return repository_url(f"{ownername}/{dirname}/{chroot_name}-devel/")
    return repository_url(f"{ownername}/{dirname}/{chroot_name}/devel/")
