"""Uploads reach the backend over HTTP: signed, expiring links to one build's stored file.

The web role keeps an upload (or a custom webhook's payload) in its own UPLOADS_ROOT until
the build's source task has ended. The backend, on another host, fetches it into its own
work directory through a link it signs when the task runs (SECRET_KEY is the same on both
roles; a build that waited for a stopped backend still gets a fresh link), and tells the
web to remove it once the task has ended. A link names one build and one file name, never
a path, and expires after UPLOAD_LINK_SECONDS. With WEB_INTERNAL_URL unset (one host) the
backend reads UPLOADS_ROOT itself, as it always did.

With several web hosts, each sets WEB_INTERNAL_URL to its own address: a build records the
one that took it (Build.web_host), and the backend fetches from that host.
"""

import logging
import time
from pathlib import Path

import requests
from django.conf import settings
from django.core import signing
from django.urls import reverse
from django.utils.text import get_valid_filename

from apps.builds.sources import discard_upload, upload_dir
from apps.core.errors import PermissionDenied, ServiceError
from apps.core.paths import PathEscape, confined

logger = logging.getLogger(__name__)
# One salt per purpose: a fetch link cannot be replayed to remove an upload, nor the reverse.
FETCH_SALT = "coprsite.builds.upload-fetch"
RELEASE_SALT = "coprsite.builds.upload-release"
# A fetch tries this often, waiting FETCH_RETRY_SECONDS more each time, before the task
# fails: the web role restarting (a deploy) takes seconds, not minutes.
FETCH_ATTEMPTS = 4
FETCH_RETRY_SECONDS = 2.0
FETCH_TIMEOUT_SECONDS = 60
RELEASE_TIMEOUT_SECONDS = 10
CHUNK_SIZE = 1024 * 1024


class UploadLinkRefused(PermissionDenied):
    """A link whose signature does not match, or that has expired."""


class UploadFetchFailed(ServiceError):
    """The backend could not get a build's upload from the web role."""


def link_token(build_id: int, name: str, *, salt: str) -> str:
    return signing.TimestampSigner(salt=salt).sign_object({"build": build_id, "file": name})


def link_read(token: str, *, salt: str) -> tuple[int, str]:
    """The build id and file name a link names; UploadLinkRefused when it is not valid."""
    try:
        value = signing.TimestampSigner(salt=salt).unsign_object(
            token, max_age=settings.UPLOAD_LINK_SECONDS
        )
    except signing.SignatureExpired as error:
        raise UploadLinkRefused(
            f"This upload link has expired (links last {settings.UPLOAD_LINK_SECONDS} s; "
            "the backend signs a fresh one for every attempt)."
        ) from error
    except signing.BadSignature as error:
        raise UploadLinkRefused(
            "This upload link is not valid: its signature does not match. The web and "
            "backend hosts must share SECRET_KEY."
        ) from error
    if not (isinstance(value, dict) and isinstance(value.get("build"), int)):
        raise UploadLinkRefused("This upload link names no build.")
    return value["build"], str(value.get("file", ""))


def stored_upload_path(build_id: int, name: str) -> Path | None:
    """The file `name` of a build's upload directory on this host, if it is there.

    The name comes from a signed link, yet it is checked like a user's: a plain file name,
    inside the build's own directory.
    """
    if not name or name != get_valid_filename(name):
        return None
    directory = upload_dir(build_id)
    try:
        path = confined(settings.UPLOADS_ROOT, directory.name, name)
    except PathEscape:
        return None
    return path if path.is_file() else None


def web_url(web_host: str) -> str:
    """The web host that keeps a build's files: the one that took it, else this host's
    WEB_INTERNAL_URL (a build made before the web host recorded itself); empty on one host."""
    return web_host or settings.WEB_INTERNAL_URL


def fetch_url(web_host: str, build_id: int, name: str) -> str:
    token = link_token(build_id, name, salt=FETCH_SALT)
    return web_url(web_host) + reverse("upload-fetch", args=[token])


def release_url(web_host: str, build_id: int) -> str:
    token = link_token(build_id, "", salt=RELEASE_SALT)
    return web_url(web_host) + reverse("upload-release", args=[token])


def upload_fetch(build, name: str, *, into: Path) -> Path | None:
    """A local path of the build's stored file `name`, None when the web has none.

    On one host (no WEB_INTERNAL_URL) that is the file in UPLOADS_ROOT itself; otherwise
    it is downloaded from the build's web host into `into` (the task's own directory,
    removed after the task). UploadFetchFailed when that host cannot be reached or refuses
    the link.
    """
    if not web_url(build.web_host):
        return stored_upload_path(build.pk, name)
    target = into / get_valid_filename(name)
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        try:
            return _download(fetch_url(build.web_host, build.pk, name), build.pk, target)
        except (requests.ConnectionError, requests.Timeout, _WebUnavailable) as error:
            if attempt == FETCH_ATTEMPTS:
                raise UploadFetchFailed(
                    f"could not fetch the upload {name} from the web role at "
                    f"{web_url(build.web_host)}: {error}"
                ) from error
            logger.warning("fetching the upload of build %s: %s; retrying", build.pk, error)
            time.sleep(FETCH_RETRY_SECONDS * attempt)
    return None  # not reached


class _WebUnavailable(Exception):
    """A 5xx answer: the web role is restarting or overloaded."""


def _download(url: str, build_id: int, target: Path) -> Path | None:
    with requests.get(url, stream=True, timeout=FETCH_TIMEOUT_SECONDS) as response:
        if response.status_code == 404:
            return None
        if response.status_code >= 500:
            raise _WebUnavailable(f"HTTP {response.status_code}")
        if response.status_code != 200:
            raise UploadFetchFailed(
                f"the web role refused the upload link of build {build_id} "
                f"(HTTP {response.status_code}): {response.text[:300].strip()}"
            )
        size = 0
        with open(target, "wb") as stream:
            for chunk in response.iter_content(CHUNK_SIZE):
                size += len(chunk)
                # The web limited the upload; this guards the backend's disk all the same.
                if size > settings.MAX_SRPM_BYTES:
                    limit = settings.MAX_SRPM_BYTES
                    raise UploadFetchFailed(
                        f"the upload of build {build_id} is larger than {limit} bytes"
                    )
                stream.write(chunk)
    return target


def upload_release(build_id: int, web_host: str = "") -> None:
    """The source task has ended: remove the build's upload here, and ask its web host
    (Build.web_host) to remove its copy (it checks the task itself). A failed request only
    leaves the upload to that host's sweep (`uploads_reconcile`)."""
    discard_upload(build_id)
    if not web_url(web_host):
        return
    try:
        response = requests.post(release_url(web_host, build_id), timeout=RELEASE_TIMEOUT_SECONDS)
    except requests.RequestException as error:
        logger.warning("could not ask the web role to remove the upload of %s: %s", build_id, error)
        return
    if response.status_code >= 400:
        logger.warning(
            "the web role kept the upload of build %s: HTTP %s %s",
            build_id,
            response.status_code,
            response.text[:200],
        )
