"""Checking and storing build sources: dispatch to the source methods, keep uploads.

Each method's checks and job source live in its module (`apps.packages.sources`).
"""

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.text import get_valid_filename

from apps.core.errors import ServiceError
from apps.core.paths import confined
from apps.packages.sources import METHODS
from apps.packages.sources.base import (  # noqa: F401 - probe_url is imported from here too
    MAX_URL_REDIRECTS,
    SPEC_SUFFIX,
    SRPM_SUFFIXES,
    probe_url,
)
from apps.packages.sources.custom import HOOK_PAYLOAD_NAME
from builders.srpm import NotAnSrpm, read_srpm_header

MAX_SPEC_BYTES = 1024 * 1024


class UploadBudgetExceeded(ServiceError):
    """The user's uploads waiting for their source task would exceed their budget."""

    status = 413


def size_text(size: int) -> str:
    """Bytes as a person reads them: 512 bytes, 3.5 KiB, 1.2 GiB."""
    if size < 1024:
        return f"{size} bytes"
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


def check_uploaded_srpm(upload: UploadedFile) -> None:
    """Accept an SRPM whose header reads (never executing anything) or a spec file."""
    if upload.name.endswith(SPEC_SUFFIX):
        check_uploaded_spec(upload)
        return
    if not upload.name.endswith(SRPM_SUFFIXES):
        raise ServiceError(
            f"'{upload.name}' is neither a source RPM nor a spec file: "
            "the name must end in .src.rpm or .spec."
        )
    if upload.size > settings.MAX_SRPM_BYTES:
        raise ServiceError(f"'{upload.name}' is larger than {settings.MAX_SRPM_BYTES} bytes.")
    # The copy keeps the user's file name: the reader's messages name the file they read.
    with tempfile.TemporaryDirectory() as directory:
        copy = Path(directory) / (Path(upload.name).name or "upload.src.rpm")
        with copy.open("wb") as stream:
            for chunk in upload.chunks():
                stream.write(chunk)
        try:
            read_srpm_header(copy)
        except NotAnSrpm as error:
            raise ServiceError(f"'{upload.name}' is not a usable source RPM: {error}") from error
    upload.seek(0)


def check_uploaded_spec(upload: UploadedFile) -> None:
    # The spec is parsed only by rpmbuild inside the sandbox; here it must merely be text.
    if upload.size > MAX_SPEC_BYTES:
        raise ServiceError(f"'{upload.name}' is larger than {MAX_SPEC_BYTES} bytes.")
    content = b"".join(upload.chunks())
    try:
        content.decode()
    except UnicodeDecodeError as error:
        raise ServiceError(f"'{upload.name}' is not a text spec file.") from error
    upload.seek(0)


# Left-over uploads are removed after this long untouched: far beyond the time a submit
# takes between writing its upload and committing its build row.
UPLOAD_GRACE_SECONDS = 3600
# A build's upload directory is named after its id; request-time RPM uploads use rpm-*.
_UPLOAD_DIR_RE = re.compile(r"\d{8,}")
_REQUEST_TEMP_PREFIX = "rpm-"
# Builds whose upload directory holds something: the upload, or a custom webhook's payload.
UPLOADED_SOURCE_TYPES = ("upload", "custom")


def upload_dir(build_id: int) -> Path:
    return Path(settings.UPLOADS_ROOT) / f"{build_id:08d}"


def store_upload(build_id: int, upload: UploadedFile) -> dict:
    """Keep the upload until its source task has copied it; returns Copr's source_json."""
    filename = get_valid_filename(Path(upload.name).name)
    directory = upload_dir(build_id)
    # The file name is the user's: the joined path must stay in the build's upload dir.
    target_path = confined(settings.UPLOADS_ROOT, directory.name, filename)
    directory.mkdir(parents=True, exist_ok=True)
    with open(target_path, "wb") as target:
        for chunk in upload.chunks():
            target.write(chunk)
    return {"pkg": filename, "tmp": directory.name}


def discard_upload(build_id: int) -> None:
    shutil.rmtree(upload_dir(build_id), ignore_errors=True)


def discard_upload_on_commit(build_id: int) -> None:
    """Remove the build's upload once the transaction that ended its source task commits
    (a rollback keeps both); a process that dies before leaves it to uploads_left_over."""
    transaction.on_commit(partial(discard_upload, build_id))


def upload_bytes(build_id: int) -> int:
    """What the build's upload directory holds on disk (0 once it is gone)."""
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(upload_dir(build_id)):
            with contextlib.suppress(FileNotFoundError):
                total += entry.stat(follow_symlinks=False).st_size
    return total


def uploads_left_over(*, live_build_ids, older_than_seconds: float) -> list[Path]:
    """Directories of UPLOADS_ROOT that nothing will read: build directories whose build
    is not in `live_build_ids` (a callable taking the candidate ids), and temp directories
    of RPM uploads whose request died, if untouched for `older_than_seconds`.

    The age covers a submit still writing its upload before its build row commits.
    """
    root = Path(settings.UPLOADS_ROOT)
    if not root.is_dir():
        return []
    cutoff = time.time() - older_than_seconds
    old = [path for path in root.iterdir() if _last_change(path) < cutoff]
    by_build = {int(path.name): path for path in old if _UPLOAD_DIR_RE.fullmatch(path.name)}
    live = set(live_build_ids(list(by_build)))
    request_temps = [path for path in old if path.name.startswith(_REQUEST_TEMP_PREFIX)]
    return [path for build_id, path in by_build.items() if build_id not in live] + request_temps


def remove_upload_path(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path, ignore_errors=True)


def _last_change(path: Path) -> float:
    """The newest mtime of a directory and its entries (a file being written is recent)."""
    try:
        newest = path.lstat().st_mtime
        if path.is_dir() and not path.is_symlink():
            for entry in os.scandir(path):
                with contextlib.suppress(FileNotFoundError):
                    newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
    except FileNotFoundError:
        return time.time()  # gone meanwhile: nothing to remove
    return newest


# --- what the source task gets -------------------------------------------------------------


def job_source(build, *, upload_file: Callable[[str], Path | None] | None = None) -> dict:
    """The JobSpec.source of a build's source task: its type, its settings, what the portal adds
    (the method's module adds its own, `SourceMethod.job_source`).

    `upload_file(name)` gives a local path of a file the web role stored for the build (the
    upload, a webhook's payload), or None; by default the one in this host's UPLOADS_ROOT.
    """
    source_json = dict(build.source_json)
    source = {
        **source_json,
        "type": build.source_type,
        "package": build.package_name or (build.package.name if build.package_id else ""),
        "builder_tools": str(settings.BUILDER_TOOLS_DIR),
        "pypi_index": settings.PYPI_INDEX_URL,
        "rubygems_url": settings.RUBYGEMS_URL,
    }
    method = METHODS.get(build.source_type)
    if method is None:
        return source
    if upload_file is None:
        upload_file = partial(_local_upload_file, build.pk)
    return method.job_source(build, source_json, source, upload_file=upload_file)


def _local_upload_file(build_id: int, name: str) -> Path | None:
    path = upload_dir(build_id) / name
    return path if path.is_file() else None


def store_hook_payload(build_id: int, payload: bytes) -> None:
    """Keep a custom webhook's body for the build's script (removed after the source task)."""
    directory = upload_dir(build_id)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / HOOK_PAYLOAD_NAME).write_bytes(payload)
