"""Checking and storing build sources at submit time (SRPM URL or upload)."""

import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.text import get_valid_filename

from apps.core.errors import ServiceError
from builders.srpm import NotAnSrpm, read_srpm_header

URL_CHECK_SECONDS = 10
SRPM_SUFFIXES = (".src.rpm", ".nosrc.rpm")


def check_source(source_type: str, source_json: dict) -> None:
    if source_type == "link":
        check_srpm_url(source_json.get("url", ""))
    else:
        raise ServiceError(f"Unsupported source type '{source_type}'.")


def check_srpm_url(url: str) -> None:
    """An http(s) URL that answers; the builder downloads it later inside a sandbox."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceError(f"The source URL must be an http:// or https:// URL, not '{url}'.")
    if not parts.path.endswith(SRPM_SUFFIXES):
        raise ServiceError(f"The source URL must point to a .src.rpm file: '{url}'.")
    if settings.SUBMIT_CHECK_URLS:
        probe_url(url)


def probe_url(url: str) -> None:
    # Only the status is looked at; the body is never read here (the builder fetches it).
    try:
        response = requests.get(url, stream=True, timeout=URL_CHECK_SECONDS, allow_redirects=True)
        response.close()
    except requests.RequestException as error:
        raise ServiceError(f"Cannot reach the source URL {url}: {type(error).__name__}.") from error
    if response.status_code >= 400:
        raise ServiceError(f"Cannot download the source URL {url}: HTTP {response.status_code}.")


def check_uploaded_srpm(upload: UploadedFile) -> None:
    """Read the upload's RPM header (never executing anything) before accepting it."""
    if not upload.name.endswith(SRPM_SUFFIXES):
        raise ServiceError(f"'{upload.name}' is not a source RPM: the name must end in .src.rpm.")
    if upload.size > settings.MAX_SRPM_BYTES:
        raise ServiceError(f"'{upload.name}' is larger than {settings.MAX_SRPM_BYTES} bytes.")
    with tempfile.NamedTemporaryFile(suffix=".src.rpm") as copy:
        for chunk in upload.chunks():
            copy.write(chunk)
        copy.flush()
        try:
            read_srpm_header(Path(copy.name))
        except NotAnSrpm as error:
            raise ServiceError(f"'{upload.name}' is not a usable source RPM: {error}") from error
    upload.seek(0)


def upload_dir(build_id: int) -> Path:
    return Path(settings.UPLOADS_ROOT) / f"{build_id:08d}"


def store_upload(build_id: int, upload: UploadedFile) -> dict:
    """Keep the upload until its source task has copied it; returns Copr's source_json."""
    filename = get_valid_filename(Path(upload.name).name)
    directory = upload_dir(build_id)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / filename, "wb") as target:
        for chunk in upload.chunks():
            target.write(chunk)
    return {"pkg": filename, "tmp": directory.name}


def discard_upload(build_id: int) -> None:
    shutil.rmtree(upload_dir(build_id), ignore_errors=True)
