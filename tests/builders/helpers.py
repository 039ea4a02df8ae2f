"""Small helpers shared by the builder tests: readable temp dirs, free ports, a web server."""

from __future__ import annotations

import socket
import tempfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


def world_readable_dir(prefix: str) -> Path:
    """A fresh directory under /tmp the unprivileged build uid can read.

    pytest's tmp_path is private to root; tests that show the sandbox (and not file modes)
    hides something, or that hand a path to the build user, need this instead.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    path.chmod(0o755)
    return path


def free_port() -> int:
    """A local TCP port nothing listens on (bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LocalServer:
    """An HTTP server on 127.0.0.1 serving `directory`; remembers the paths asked for."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.requests: list[str] = []
        # path -> Location of a 302 answer
        self.redirects: dict[str, str] = {}
        server = self

        class Handler(SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server dispatches to
                server.requests.append(self.path)
                if self.path in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[self.path])
                    self.end_headers()
                    return
                if self.path == "/endless":
                    self._send_without_length()
                    return
                super().do_GET()

            def _send_without_length(self) -> None:
                # No Content-Length, so curl's --max-filesize cannot know the size up front.
                self.send_response(200)
                self.end_headers()
                chunk = b"x" * 65536
                for _ in range(64):
                    self.wfile.write(chunk)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        handler = partial(Handler, directory=str(directory))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"
