"""Serve RESULTS_ROOT under /results/ in the embedded setup (production lets nginx do it)."""

import gzip
import mimetypes
import re
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.http import Http404, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.utils.encoding import escape_uri_path
from django.utils.html import format_html, format_html_join
from django.utils.http import http_date
from django.views.decorators.http import require_safe

CHUNK_SIZE = 64 * 1024
TEXT_PLAIN = "text/plain; charset=utf-8"
# Text Copr's nginx shows in the browser instead of offering as a download.
TEXT_SUFFIXES = (".log", ".spec", ".info")
SINGLE_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


class RangeNotSatisfiable(Exception):
    """The requested range starts beyond the end of the file."""


@require_safe
def serve_results(request, path: str = ""):
    """A file, or an index of a directory so `wget -r` (copr-cli download-build) can walk it.

    Results are public; any origin may read them, so the live log page of a web role on
    another host (RESULTS_URL names this one) can follow a log with its own requests.
    """
    response = results_response(request, path)
    response["Access-Control-Allow-Origin"] = "*"
    return response


def results_response(request, path: str):
    target = resolve_results_path(path)
    if target is not None and not target.exists() and path.endswith(".log"):
        compressed = resolve_results_path(path + ".gz")
        if compressed is not None and compressed.is_file():
            return compressed_log_response(request, compressed)
    if target is not None and not target.exists() and path.endswith(".log.gz"):
        # A task being finished right now: its log is compressed a moment later.
        plain = resolve_results_path(path.removesuffix(".gz"))
        if plain is not None and plain.is_file():
            return file_response(request, plain)
    if target is None or not target.exists():
        raise Http404("No such file in the results.")
    if target.is_dir():
        if path and not path.endswith("/"):
            # Relative links in the index only resolve against a URL ending in `/`.
            return HttpResponseRedirect(escape_uri_path(request.path) + "/")
        return directory_index(target, request.path)
    if path.endswith("/"):
        raise Http404("Not a directory.")
    return file_response(request, target)


def resolve_results_path(path: str) -> Path | None:
    """`path` inside RESULTS_ROOT with `..` and symlinks resolved, or None if it leaves it."""
    root = Path(settings.RESULTS_ROOT).resolve()
    try:
        candidate = (root / path).resolve()
    except (OSError, ValueError):  # symlink loops, NUL bytes
        return None
    return candidate if candidate.is_relative_to(root) else None


def directory_index(directory: Path, url_path: str) -> HttpResponse:
    """A bare HTML list of links, like nginx's autoindex."""
    entries = sorted(directory.iterdir(), key=lambda entry: entry.name)
    names = [entry.name + "/" if entry.is_dir() else entry.name for entry in entries]
    if directory != Path(settings.RESULTS_ROOT).resolve():
        names.insert(0, "../")
    # `./` keeps a name such as `project:pr:1` from reading as a URL scheme.
    links = format_html_join(
        "\n", '<li><a href="./{}">{}</a></li>', ((quote(name, safe="/@:+"), name) for name in names)
    )
    html = format_html(
        "<!DOCTYPE html>\n<html><head><title>Index of {path}</title></head>\n"
        "<body><h1>Index of {path}</h1>\n<ul>\n{links}\n</ul></body></html>\n",
        path=url_path,
        links=links,
    )
    return HttpResponse(html)


def compressed_log_response(request, path: Path) -> StreamingHttpResponse:
    """A finished log (stored as `<name>.gz`) under its live URL, as nginx's gzip_static does.

    A client that accepts gzip and wants the whole file gets the stored bytes; one that
    asks for a range (the live log page reading on from its offset) or cannot inflate
    gets the text, ranges counted in text bytes as while the task ran.
    """
    accepts_gzip = "gzip" in request.headers.get("Accept-Encoding", "")
    if accepts_gzip and "Range" not in request.headers:
        response = file_response(request, path)
    else:
        response = inflated_response(request, path)
    response["Vary"] = "Accept-Encoding"
    return response


def inflated_response(request, path: Path) -> StreamingHttpResponse:
    # Our logs are single gzip members below 4 GiB: the trailer holds the text's size.
    with path.open("rb") as file:
        file.seek(-4, 2)
        size = int.from_bytes(file.read(4), "little")
    last_modified = http_date(path.stat().st_mtime)
    response = ranged_response(request, size, last_modified, partial(read_inflated, path))
    if response.status_code != 416:
        response["Content-Type"] = TEXT_PLAIN
    return response


def ranged_response(request, size: int, last_modified: str, read) -> HttpResponse:
    """The whole content, or the one range asked for, with `read(start, length)` as its body."""
    try:
        byte_range = requested_range(request, size, last_modified)
    except RangeNotSatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
        return response
    start, end = byte_range or (0, size - 1)
    response = StreamingHttpResponse(read(start, end - start + 1))
    if byte_range:
        response.status_code = 206
        response["Content-Range"] = f"bytes {start}-{end}/{size}"
    response["Content-Length"] = str(max(end - start + 1, 0))
    response["Accept-Ranges"] = "bytes"
    response["Last-Modified"] = last_modified
    return response


def read_inflated(path: Path, start: int, length: int) -> Iterator[bytes]:
    with gzip.open(path, "rb") as file:
        file.seek(start)  # inflates up to `start`: logs are megabytes, not gigabytes
        while length > 0:
            chunk = file.read(min(CHUNK_SIZE, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def file_response(request, path: Path) -> StreamingHttpResponse:
    """The file's bytes, or the one range asked for (dnf and browsers resume downloads)."""
    stat = path.stat()
    # A live log keeps growing while the build runs: the client gets the bytes written so far.
    size = stat.st_size
    last_modified = http_date(stat.st_mtime)
    response = ranged_response(request, size, last_modified, partial(read_bytes, path))
    if response.status_code == 416:
        return response
    content_type, encoding = content_type_for(path.name)
    response["Content-Type"] = content_type
    if encoding:
        response["Content-Encoding"] = encoding
    return response


def requested_range(request, size: int, last_modified: str) -> tuple[int, int] | None:
    """(first, last) byte of a single `Range: bytes=…`; None to send the whole file."""
    match = SINGLE_RANGE.match(request.headers.get("Range", ""))
    if_range = request.headers.get("If-Range")
    # Several ranges, or a stale If-Range: answering with the whole file is always allowed.
    if not match or (if_range and if_range != last_modified):
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:
        suffix_length = int(last)
        if suffix_length == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - suffix_length, 0), size - 1
    if last and int(last) < int(first):
        return None
    if int(first) >= size:
        raise RangeNotSatisfiable
    return int(first), min(int(last), size - 1) if last else size - 1


def read_bytes(path: Path, start: int, length: int) -> Iterator[bytes]:
    """`length` bytes from `start`, never more, even if the file grew since it was stat'ed."""
    with path.open("rb") as file:
        file.seek(start)
        while length > 0:
            chunk = file.read(min(CHUNK_SIZE, length))
            if not chunk:
                return
            length -= len(chunk)
            yield chunk


def content_type_for(name: str) -> tuple[str, str | None]:
    """(Content-Type, Content-Encoding) for a results file."""
    if name.endswith(".log.gz"):
        # Finished build logs are stored gzipped; the browser inflates and shows them.
        return TEXT_PLAIN, "gzip"
    if name.endswith(TEXT_SUFFIXES):
        return TEXT_PLAIN, None
    if name.endswith(".rpm"):
        return "application/x-rpm", None
    if name.endswith(".gz"):
        # repodata/*.xml.gz: dnf checksums the compressed bytes, so no Content-Encoding.
        return "application/gzip", None
    content_type, encoding = mimetypes.guess_type(name)
    if encoding or not content_type:
        return "application/octet-stream", None
    return content_type, None
