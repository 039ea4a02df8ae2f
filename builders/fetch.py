"""Download a source URL with curl inside a sandbox that has network and nothing else.

The download runs in the job's own network namespace (builders/network.py), so a URL, a
DNS answer or a redirect that points at the builder's loopback or a private address
cannot reach it, whatever the URL says.
"""

from __future__ import annotations

import signal
from pathlib import Path
from urllib.parse import urlsplit

from builders.failures import BuildFailure, shorten
from builders.livelog import LiveLog
from builders.sandbox import BUILD_DIR, Watchdog, Workspace, run_sandboxed

DOWNLOAD_NAME = "download.src.rpm"
ALLOWED_SCHEMES = ("http", "https")
# curl prints this line after the transfer (--write-out) so the HTTP status is known even
# when --fail makes it exit early.
_STATUS_MARK = "coprsite-download-status: "
# Redirects are followed (release URLs on forges redirect to storage), within reason.
_MAX_REDIRECTS = 10
_CONNECT_TIMEOUT_SECONDS = 60
# bwrap reports a child killed by signal N as exit 128 + N; SIGXFSZ means the file-size
# limit (prlimit --fsize) stopped curl when the server sent no (or a wrong) length.
_KILLED_BY_FILE_SIZE_LIMIT = 128 + signal.SIGXFSZ


def check_url(url: str) -> None:
    """Refuse anything but a plain http(s) URL before any tool sees it."""
    parts = urlsplit(url)
    if parts.scheme.lower() not in ALLOWED_SCHEMES:
        raise BuildFailure(
            shorten(f"source download failed: only http and https URLs are allowed, not {url}")
        )
    if not parts.hostname or any(char.isspace() or ord(char) < 32 for char in url):
        raise BuildFailure(shorten(f"source download failed: not a valid URL: {url!r}"))


def curl_command(url: str, target: str, *, max_bytes: int, max_seconds: int) -> list[str]:
    """The curl command line (run inside the sandbox) that downloads `url` to `target`."""
    return [
        # --max-filesize only helps when the server announces a length; the file-size
        # limit also stops a chunked or lying response at max_bytes.
        "prlimit",
        f"--fsize={max_bytes}",
        "--",
        "curl",
        "--silent",
        "--show-error",
        "--fail",
        "--location",
        "--globoff",
        "--proto",
        "=http,https",
        "--proto-redir",
        "=http,https",
        "--max-redirs",
        str(_MAX_REDIRECTS),
        "--max-filesize",
        str(max_bytes),
        "--connect-timeout",
        str(_CONNECT_TIMEOUT_SECONDS),
        "--max-time",
        str(max_seconds),
        "--output",
        target,
        "--write-out",
        _STATUS_MARK + "%{http_code}\\n",
        "--url",
        url,
    ]


def _http_status(lines: list[str]) -> str:
    for line in reversed(lines):
        if line.startswith(_STATUS_MARK):
            return line.removeprefix(_STATUS_MARK).strip()
    return "000"


def _curl_reason(exit_code: int, lines: list[str], url: str, max_bytes: int) -> str:
    host = urlsplit(url).hostname or url
    known = {
        1: "only http and https URLs are allowed (a redirect led elsewhere)",
        6: f"could not resolve host {host}",
        7: (
            f"could not connect to {host} (builds reach only public addresses: not "
            "loopback, private or link-local networks, nor the builder itself)"
        ),
        22: f"HTTP {_http_status(lines)} for {url}",
        28: f"no complete answer from {host} in time",
        47: f"more than {_MAX_REDIRECTS} redirects for {url}",
        52: f"{host} sent an empty reply",
        56: f"the connection to {host} broke off",
        60: f"the TLS certificate of {host} is not trusted",
        63: f"{url} is larger than {max_bytes} bytes",
        _KILLED_BY_FILE_SIZE_LIMIT: f"{url} is larger than {max_bytes} bytes",
    }
    if exit_code in known:
        return shorten(f"source download failed: {known[exit_code]}")
    curl_lines = [line for line in lines if line.startswith("curl: ")]
    detail = curl_lines[-1] if curl_lines else f"curl exit {exit_code}"
    return shorten(f"source download failed: {detail} ({url})")


def download(
    url: str, workspace: Workspace, *, max_bytes: int, log: LiveLog, watchdog: Watchdog
) -> Path:
    """Download `url` into the workspace and return the host path of the file.

    Raises BuildFailure with a reason a person can act on (HTTP status, host, size).
    """
    check_url(url)
    # curl gets what is left of the job's time; the watchdog stops it anyway.
    max_seconds = max(1, int(watchdog.remaining()))
    command = curl_command(
        url, f"{BUILD_DIR}/{DOWNLOAD_NAME}", max_bytes=max_bytes, max_seconds=max_seconds
    )
    log.info(f"Downloading {url} (at most {max_bytes} bytes)")
    outcome = run_sandboxed(command, workspace, network=True, log=log, watchdog=watchdog)
    if outcome.exit_code != 0:
        raise BuildFailure(_curl_reason(outcome.exit_code, outcome.lines, url, max_bytes))
    return workspace.build_dir / DOWNLOAD_NAME
