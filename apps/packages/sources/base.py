"""What every portal source method is: its form, its checks, its API keys, its job source.

A method module defines one `SourceMethod` subclass and `METHOD`, an instance of it; the
registry in `apps.packages.sources` lists the modules. The shared checks live here too.
"""

from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import ClassVar
from urllib.parse import urljoin, urlsplit

import requests
from django import forms

from apps.core import urlcheck
from apps.core.errors import InvalidForm, ServiceError

URL_CHECK_SECONDS = 10
MAX_URL_REDIRECTS = 5
SRPM_SUFFIXES = (".src.rpm", ".nosrc.rpm")
SPEC_SUFFIX = ".spec"
# A build's stored file (its upload, a webhook payload) by name, as a local path, or None.
UploadFile = Callable[[str], Path | None]


class SourceForm(forms.Form):
    """One source type's fields; `source_json()` turns them into Copr's source_json."""

    source_type: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    source_fields: ClassVar[tuple[str, ...]] = ()
    is_multipart: ClassVar[bool] = False

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.set_source_choices()

    def set_source_choices(self) -> None:
        """Fill choices read from the database (chroots, DistGit instances)."""

    def source_json(self) -> dict:
        """Copr's source_json of this type, from the cleaned fields."""
        return {name: self.cleaned_data[name] for name in self.source_fields}

    def upload(self):
        """The uploaded file, for the types that take one."""
        return None

    def visible_source_fields(self):
        return [self[name] for name in self.source_fields]


class SourceMethod:
    """One source method on the portal's side; its builder half is `builders.sources.<name>`."""

    # Copr's source type name, as in Package/Build.source_type and the builder's registry.
    name: ClassVar[str]
    # The web form's fields (mixed into the new-build and package forms).
    form: ClassVar[type[SourceForm]]
    # The form field a problem of this source is reported under (Copr's names).
    error_field: ClassVar[str] = "source"
    # Whether a package can keep this source (an upload is one build's file).
    package_source: ClassVar[bool] = True
    # APIv3 keys of `build/create/<name>` and of package add/edit; none: no such endpoint.
    api_keys: ClassVar[tuple[str, ...]] = ()
    # Copr's defaults of the keys a new source leaves out.
    api_defaults: ClassVar[dict] = {}
    # copr-cli's names of this method's keys, renamed to the stored ones.
    api_renames: ClassVar[dict[str, str]] = {}

    def check(self, source_json: dict) -> None:
        """Raise ServiceError (or InvalidForm) with a message a packager acts on."""
        raise NotImplementedError

    def api_input(self, data: dict) -> dict:
        """The request's keys (renamed) before the method's keys are picked from them."""
        return data

    def api_normalized(self, source: dict) -> dict:
        """The picked keys in the stored form (lists joined, versions as text, …)."""
        return source

    def with_package_name(self, source_json: dict, name: str) -> dict:
        """A package's source, given the package name (DistGit names its repository so)."""
        return dict(source_json)

    def job_source(
        self, build, source_json: dict, source: dict, *, upload_file: UploadFile
    ) -> dict:
        """The JobSpec.source of a build's source task; `source` holds the common keys.

        `upload_file(name)` is a local path of a file the web stored for the build (fetched
        over HTTP when the roles run on separate hosts), or None when there is none.
        """
        return source


# --- shared checks ------------------------------------------------------------------------


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


def check_committish(source_json: dict) -> None:
    committish = text_field(source_json, "committish")
    if committish.startswith("-") or any(c.isspace() for c in committish):
        raise ServiceError(f"Invalid committish '{committish}'.")


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
