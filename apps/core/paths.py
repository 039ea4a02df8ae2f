"""Where things live on disk: the Copr results layout under RESULTS_ROOT, keys, uploads."""

from pathlib import Path

from django.conf import settings


def project_results_dir(ownername: str, project_dirname: str) -> Path:
    return Path(settings.RESULTS_ROOT) / ownername / project_dirname


def chroot_results_dir(ownername: str, project_dirname: str, chroot_name: str) -> Path:
    return project_results_dir(ownername, project_dirname) / chroot_name


def results_url(relative: str = "") -> str:
    return f"{settings.PUBLIC_URL}/results/{relative}"
