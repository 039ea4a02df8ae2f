"""Checking and storing build sources at submit time: one place for every source type."""

import contextlib
import os
import re
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path, PurePosixPath
from urllib.parse import urljoin, urlsplit

import requests
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils.text import get_valid_filename

from apps.core import urlcheck
from apps.core.errors import InvalidForm, ServiceError
from apps.core.paths import confined
from builders.srpm import NotAnSrpm, read_srpm_header

URL_CHECK_SECONDS = 10
MAX_URL_REDIRECTS = 5
SRPM_SUFFIXES = (".src.rpm", ".nosrc.rpm")
SPEC_SUFFIX = ".spec"
MAX_SPEC_BYTES = 1024 * 1024
MAX_CUSTOM_SCRIPT_BYTES = 4096  # Copr's limit on the custom method's script
SCM_TYPES = ("git", "svn")
SCM_METHODS = ("rpkg", "tito", "tito_test", "make_srpm")
SCM_URL_SCHEMES = ("http", "https", "git", "ssh", "svn", "svn+ssh")
SPEC_GENERATORS = ("pyp2spec", "pyp2rpm")
PYP2RPM_TEMPLATES = ("", "fedora", "epel7", "mageia", "pld")


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


def check_source(source_type: str, source_json: dict) -> None:
    """Raise ServiceError with a message a packager understands when the source is unusable.

    Used by build_submit and by the package services, so a package can only store a
    source that a build would accept.
    """
    checker = SOURCE_CHECKERS.get(source_type)
    if checker is None:
        known = ", ".join(sorted(SOURCE_CHECKERS))
        raise ServiceError(f"Unsupported source type '{source_type}' (use one of: {known}).")
    if not isinstance(source_json, dict):
        raise ServiceError("The source settings must be a JSON object.")
    checker(source_json)


def check_link(source_json: dict) -> None:
    check_srpm_url(text_field(source_json, "url", required=True))


def check_srpm_url(url: str) -> None:
    """An http(s) URL of an SRPM or spec that answers; the builder downloads it later."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceError(f"The source URL must be an http:// or https:// URL, not '{url}'.")
    if not parts.path.endswith((*SRPM_SUFFIXES, SPEC_SUFFIX)):
        raise ServiceError(f"The source URL must point to a .src.rpm or .spec file: '{url}'.")
    if settings.SUBMIT_CHECK_URLS:
        probe_url(url)


def check_upload(source_json: dict) -> None:
    raise ServiceError("An upload source needs the file itself: submit it as an upload.")


def check_scm(source_json: dict) -> None:
    scm_type = text_field(source_json, "type") or "git"
    if scm_type not in SCM_TYPES:
        raise ServiceError(f"SCM type must be one of {', '.join(SCM_TYPES)}, not '{scm_type}'.")
    check_clone_url(text_field(source_json, "clone_url", required=True))
    committish = text_field(source_json, "committish")
    if committish.startswith("-") or any(c.isspace() for c in committish):
        raise ServiceError(f"Invalid committish '{committish}'.")
    relative_path(source_json, "subdirectory")
    relative_path(source_json, "spec")
    method = text_field(source_json, "srpm_build_method") or "rpkg"
    if method not in SCM_METHODS:
        raise ServiceError(
            f"srpm_build_method must be one of {', '.join(SCM_METHODS)}, not '{method}'."
        )


def check_clone_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in SCM_URL_SCHEMES or not parts.hostname:
        raise ServiceError(
            f"clone_url must be a remote repository URL "
            f"({', '.join(SCM_URL_SCHEMES)}), not '{url}'."
        )


def check_pypi(source_json: dict) -> None:
    name = text_field(source_json, "pypi_package_name", required=True)
    if not all(c.isalnum() or c in "-_." for c in name):
        raise ServiceError(f"Invalid PyPI package name '{name}'.")
    version = text_field(source_json, "pypi_package_version")
    if version and not all(c.isalnum() or c in "-_.+!" for c in version):
        raise ServiceError(f"Invalid PyPI package version '{version}'.")
    generator = text_field(source_json, "spec_generator") or "pyp2spec"
    if generator not in SPEC_GENERATORS:
        raise ServiceError(
            f"spec_generator must be one of {', '.join(SPEC_GENERATORS)}, not '{generator}'."
        )
    template = text_field(source_json, "spec_template")
    if template not in PYP2RPM_TEMPLATES:
        raise ServiceError(f"Unknown spec_template '{template}'.")
    versions = source_json.get("python_versions") or []
    if not isinstance(versions, list) or not all(
        isinstance(v, str | int) and str(v).replace(".", "").isdigit() for v in versions
    ):
        raise ServiceError('python_versions must be a list of versions such as ["3"].')


def check_rubygems(source_json: dict) -> None:
    name = text_field(source_json, "gem_name", required=True)
    if not all(c.isalnum() or c in "-_." for c in name):
        raise ServiceError(f"Invalid gem name '{name}'.")


def check_custom(source_json: dict) -> None:
    script = text_field(source_json, "script", required=True)
    if len(script.encode()) > MAX_CUSTOM_SCRIPT_BYTES:
        raise ServiceError(f"The custom script is longer than {MAX_CUSTOM_SCRIPT_BYTES} bytes.")
    chroot = text_field(source_json, "chroot", required=True)
    check_custom_chroot(chroot)
    builddeps = source_json.get("builddeps") or ""
    if not isinstance(builddeps, str | list):
        raise ServiceError("builddeps must be a space-separated list of package names.")
    relative_path(source_json, "resultdir")
    repos = source_json.get("repos") or []
    if not isinstance(repos, str | list):
        raise ServiceError("repos must be a list of repository URLs.")


def check_custom_chroot(name: str) -> None:
    from apps.projects.models import Chroot

    if name.startswith("fedora-latest-"):
        return  # resolved to the newest Fedora chroot when the build runs
    if not Chroot.objects.filter(name=name).exists():
        raise ServiceError(f"Chroot {name} does not exist.")


def check_distgit(source_json: dict) -> None:
    from apps.packages.models import DistGitInstance

    instance_name = text_field(source_json, "distgit")
    if instance_name and not DistGitInstance.objects.filter(name=instance_name).exists():
        known = ", ".join(DistGitInstance.objects.values_list("name", flat=True)) or "none"
        raise ServiceError(f"Unknown DistGit instance '{instance_name}' (configured: {known}).")
    if not instance_name and not DistGitInstance.objects.exists():
        raise ServiceError("No DistGit instance is configured on this server.")
    package_name = text_field(source_json, "package_name")
    clone_url = text_field(source_json, "clone_url")
    if not package_name and not clone_url:
        raise ServiceError("A DistGit source needs the package name.")
    if package_name and not all(c.isalnum() or c in "-+_." for c in package_name):
        raise ServiceError(f"Invalid package name '{package_name}'.")
    namespace = text_field(source_json, "namespace")
    if ".." in namespace.split("/"):
        raise ServiceError(f"Invalid DistGit namespace '{namespace}'.")
    committish = text_field(source_json, "committish")
    if committish.startswith("-") or any(c.isspace() for c in committish):
        raise ServiceError(f"Invalid committish '{committish}'.")


def check_unset(source_json: dict) -> None:
    raise ServiceError("This package has no source: set one before building it.")


SOURCE_CHECKERS = {
    "link": check_link,
    "upload": check_upload,
    "scm": check_scm,
    "pypi": check_pypi,
    "rubygems": check_rubygems,
    "custom": check_custom,
    "distgit": check_distgit,
    "unset": check_unset,
}
PACKAGE_SOURCE_TYPES = tuple(t for t in SOURCE_CHECKERS if t != "upload")


def text_field(source_json: dict, key: str, *, required: bool = False) -> str:
    value = source_json.get(key)
    if value is None or value == "":
        if required:
            raise InvalidForm({key: ["This field is required."]})
        return ""
    if not isinstance(value, str):
        raise InvalidForm({key: ["This field must be text."]})
    return value.strip()


def relative_path(source_json: dict, key: str) -> str:
    """A path inside the checkout: never absolute, never climbing out with '..'."""
    value = text_field(source_json, key)
    path = PurePosixPath(value)
    if value and (path.is_absolute() or ".." in path.parts):
        raise InvalidForm({key: [f"Must be a path inside the repository, not '{value}'."]})
    return value


def probe_url(url: str) -> None:
    """Check that the URL answers, following redirects by hand so each hop is checked.

    Runs in the web process, so no hop may aim at a loopback, private or link-local
    address (unless ALLOW_PRIVATE_URLS), and the messages say nothing about what answered
    there: they must not turn this check into a scanner of the service's network.
    Only the status is looked at; the body is never read (the builder fetches it).
    """
    for _ in range(MAX_URL_REDIRECTS + 1):
        check_public_url(url)
        try:
            response = requests.get(
                url, stream=True, timeout=URL_CHECK_SECONDS, allow_redirects=False
            )
            response.close()
        except requests.RequestException as error:
            raise ServiceError(f"Cannot reach the source URL {url}.") from error
        if response.is_redirect and response.headers.get("Location"):
            url = urljoin(url, response.headers["Location"])
            continue
        if response.status_code >= 400:
            raise ServiceError(
                f"Cannot download the source URL {url}: HTTP {response.status_code}."
            )
        return
    raise ServiceError(f"The source URL redirects more than {MAX_URL_REDIRECTS} times.")


def check_public_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServiceError(f"The source URL redirects to '{url}', which is not http(s).")
    try:
        port = parts.port
    except ValueError as error:
        raise ServiceError(f"The source URL {url} has an invalid port.") from error
    if not urlcheck.private_urls_allowed() and urlcheck.is_private_host(parts.hostname, port):
        raise ServiceError(f"Cannot use the source URL {url}: {urlcheck.PRIVATE_ADDRESS_MESSAGE}.")


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

HOOK_PAYLOAD_NAME = "hook_payload"


def job_source(build) -> dict:
    """The JobSpec.source of a build's source task: its type, its settings, what the portal adds.

    Copr's scm `type` (git/svn) travels as `scm_type`, so it cannot hide the source type.
    """
    source_json = dict(build.source_json)
    if build.source_type == "upload":
        return {"type": "upload", "path": str(upload_dir(build.pk) / source_json["pkg"])}
    if build.source_type == "scm":
        source_json["scm_type"] = source_json.pop("type", None) or "git"
    source = {
        **source_json,
        "type": build.source_type,
        "package": build.package_name or (build.package.name if build.package_id else ""),
        "builder_tools": str(settings.BUILDER_TOOLS_DIR),
        "pypi_index": settings.PYPI_INDEX_URL,
        "rubygems_url": settings.RUBYGEMS_URL,
    }
    if build.source_type == "distgit":
        source.update(distgit_locations(source_json))
    if build.source_type == "custom":
        source["chroot"] = resolved_custom_chroot(source_json.get("chroot", ""))
        payload = upload_dir(build.pk) / HOOK_PAYLOAD_NAME
        if source_json.get("hook_data") and payload.is_file():
            source["hook_payload_path"] = str(payload)
    return source


def distgit_locations(source_json: dict) -> dict:
    """Clone and lookaside URLs from the operator's DistGit instance (Copr's patterns)."""
    from apps.packages.models import DistGitInstance

    instances = DistGitInstance.objects.all()
    if source_json.get("distgit"):
        instances = instances.filter(name=source_json["distgit"])
    instance = instances.first()
    if instance is None:
        return {}
    package_name = source_json.get("package_name", "")
    namespace = source_json.get("namespace") or instance.default_namespace
    uri = instance.clone_package_uri.format(pkgname=package_name, namespace=namespace)
    clone_url = (
        source_json.get("clone_url") or f"{instance.clone_url.rstrip('/')}/{uri.lstrip('/')}"
    )
    return {
        "clone_url": clone_url,
        "lookaside_url": instance.lookaside_url,
        "package_name": package_name,
        "namespace": namespace,
    }


def resolved_custom_chroot(name: str) -> str:
    """`fedora-latest-<arch>` is the newest active Fedora release chroot of that arch."""
    from apps.projects.models import Chroot

    if not name.startswith("fedora-latest-"):
        return name
    arch = name.removeprefix("fedora-latest-")
    releases = Chroot.objects.filter(
        name__startswith="fedora-", name__endswith=f"-{arch}", is_active=True
    ).values_list("name", flat=True)
    numbered = [n for n in releases if n.split("-")[1].isdigit()]
    return max(numbered, key=lambda n: int(n.split("-")[1]), default=name)


def store_hook_payload(build_id: int, payload: bytes) -> None:
    """Keep a custom webhook's body for the build's script (removed after the source task)."""
    directory = upload_dir(build_id)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / HOOK_PAYLOAD_NAME).write_bytes(payload)
