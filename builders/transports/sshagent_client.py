"""One command run by a builder's agent (sshagent.py), used as `ssh host COMMAND` was.

The agent's socket is forwarded to a socket of the worker by the builder's master
connection; an AgentCommand connects to it, in this process: no process per command.
It has the parts of a subprocess.Popen the transport uses: `stdin` (write, flush, close),
`stdout` (a pipe, or collected), the collected standard error, `poll`, `wait`, `kill` and
`returncode` (255 when the connection or the agent failed, as ssh's own status).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import struct
import subprocess
import threading
from typing import BinaryIO

from builders.transports.sshagent import HEADER, read_frame

SSH_EXIT_ERROR = 255
KILLED = -9  # what Popen says of a process it killed


class AgentInput:
    """The command's standard input, as "I" frames; closing it sends the empty frame."""

    def __init__(self, command: AgentCommand) -> None:
        self._command = command
        self._closed = False

    def write(self, data: bytes) -> int:
        if data:
            try:
                self._command.send(b"I", bytes(data))
            except OSError as error:
                raise BrokenPipeError(str(error)) from error
        return len(data)

    def flush(self) -> None:
        """Frames are sent as they are written."""

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # A connection that is gone: the command's status says so.
            with contextlib.suppress(OSError):
                self._command.send(b"I", b"")


class AgentCommand:
    def __init__(self, socket_path: str, command: str, *, stdout_pipe: bool = False) -> None:
        self.args = command
        self.returncode: int | None = None
        self.collected_stdout = bytearray()
        self.collected_stderr = bytearray()
        self.stdout: BinaryIO | None = None
        self.stdin = AgentInput(self)
        self._pipe: int | None = None
        self._killed = False
        self._done = threading.Event()
        self._send_lock = threading.Lock()
        if stdout_pipe:
            read_end, self._pipe = os.pipe()
            self.stdout = open(read_end, "rb")  # noqa: SIM115 - the caller reads and closes it
        self._socket = socket.socket(socket.AF_UNIX)
        try:
            self._socket.connect(socket_path)
            self.send_raw(json.dumps({"command": command}).encode() + b"\n")
        except OSError as error:
            self._socket.close()
            self.collected_stderr += (
                f"the builder's command agent does not answer: {error}".encode()
            )
            self._finish(SSH_EXIT_ERROR)
            return
        threading.Thread(target=self._relay, daemon=True).start()

    def send(self, kind: bytes, data: bytes) -> None:
        self.send_raw(HEADER.pack(kind, len(data)) + data)

    def send_raw(self, data: bytes) -> None:
        with self._send_lock:
            self._socket.sendall(data)

    def _relay(self) -> None:
        """The command's output to its pipe and buffers, until its status comes."""
        status = SSH_EXIT_ERROR
        try:
            while True:
                kind, data = read_frame(self._socket)
                if kind == b"X":
                    (code,) = struct.unpack(">i", data)
                    status = code if code >= 0 else 128 - code
                    break
                if kind == b"E":
                    self.collected_stderr += data
                elif self._pipe is not None:
                    _write_all(self._pipe, data)
                else:
                    self.collected_stdout += data
        except (OSError, EOFError, struct.error):
            if not self._killed:
                self.collected_stderr += b"the connection to the builder broke"
        self._socket.close()
        self._finish(KILLED if self._killed else status)

    def _finish(self, status: int) -> None:
        if self._pipe is not None:
            os.close(self._pipe)
            self._pipe = None
        self.returncode = status
        self._done.set()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(self.args, timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def kill(self) -> None:
        """Leave the command: the agent closes its pipes, as sshd does for a lost session."""
        self._killed = True
        with contextlib.suppress(OSError):  # not connected, or closed already
            self._socket.shutdown(socket.SHUT_RDWR)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
