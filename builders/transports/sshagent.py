"""The command agent on an SSH builder host: runs commands without a login shell.

sshd runs every command through the login's shell, and bash run by sshd reads ~/.bashrc
first (1.2 s for root's on a machine with pyenv), whatever the command. So the transport
logs in once per builder, starts this agent (the only command run by the login shell),
and reaches it afterwards through the same master connection, which forwards a socket of
the worker to the agent's Unix socket (`ssh -O forward -L`): sshd connects such channels
to the socket without starting any shell. The worker's side is sshagent_client.py.

Each connection runs one `/bin/sh -c COMMAND` with a plain environment. The framing,
both ways, is one type byte, a 4-byte big-endian length and the data:
    client -> agent: a first line of JSON {"command": ...}, then "I" frames (standard
                     input; an empty one closes it)
    agent -> client: "O" and "E" frames (standard output and error), then "X" with the
                     exit status (a negative signal number when a signal ended it).
A client that goes away closes the command's pipes, as sshd does with a broken session.
A build job is no command's child: `builders.remote start` detaches it, and only the
`tail` that follows it ends with the client.

This file is shipped to the host as it is: the standard library of Python 3.9 only. An
agent serves one login (its socket is in a directory of mode 0700 in the login's home)
and ends after IDLE_EXIT_SECONDS without a command.
"""

import contextlib
import fcntl
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

HEADER = struct.Struct(">cI")
IDLE_EXIT_SECONDS = 600  # an agent nobody used for this long goes away
CHUNK = 65536
CLIENT_CLOSE_SECONDS = 10
# The environment of a command: what sshd gives a session, without the shell's additions.
PLAIN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
KEPT_VARIABLES = ("HOME", "USER", "LOGNAME", "LANG", "TZ")


def read_exactly(connection, size):
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def read_frame(connection):
    kind, size = HEADER.unpack(read_exactly(connection, HEADER.size))
    return kind, read_exactly(connection, size) if size else b""


def read_line(connection):
    line = b""
    while not line.endswith(b"\n"):
        chunk = connection.recv(1)
        if not chunk:
            raise EOFError
        line += chunk
    return line


class Session:
    """One command for one client connection."""

    def __init__(self, connection):
        self.connection = connection
        self.send_lock = threading.Lock()
        self.connected = True

    def send(self, kind, data=b""):
        if not self.connected:
            return
        try:
            with self.send_lock:
                self.connection.sendall(HEADER.pack(kind, len(data)) + data)
        except OSError:
            self.connected = False

    def run(self):
        try:
            command = json.loads(read_line(self.connection))["command"]
        except (EOFError, OSError, ValueError, KeyError, TypeError):
            return  # not a client of ours, or one that left
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=plain_environment(),
            cwd=os.environ.get("HOME", "/"),
        )
        pumps = [
            threading.Thread(target=self.pump, args=(process.stdout, b"O"), daemon=True),
            threading.Thread(target=self.pump, args=(process.stderr, b"E"), daemon=True),
        ]
        for pump in pumps:
            pump.start()
        feeder = threading.Thread(target=self.feed, args=(process,), daemon=True)
        feeder.start()
        for pump in pumps:
            pump.join()
        self.send(b"X", struct.pack(">i", process.wait()))
        # The client closes once it has the status; closing first with its input unread
        # would reset the connection under the status.
        feeder.join(CLIENT_CLOSE_SECONDS)

    def pump(self, stream, kind):
        """Copy a pipe of the command to the client; without a client, close it."""
        for chunk in iter(lambda: stream.read1(CHUNK), b""):
            self.send(kind, chunk)
            if not self.connected:
                break
        stream.close()

    def feed(self, process):
        """Standard input from the client; closed on an empty frame or when it goes away."""
        try:
            while True:
                kind, data = read_frame(self.connection)
                if kind != b"I" or not data:
                    break
                process.stdin.write(data)
                process.stdin.flush()
        except (EOFError, OSError, struct.error):
            self.connected = False
        with contextlib.suppress(OSError):
            process.stdin.close()


def plain_environment():
    environment = {name: os.environ[name] for name in KEPT_VARIABLES if name in os.environ}
    environment["PATH"] = PLAIN_PATH
    return environment


class Agent:
    def __init__(self, listener, path):
        self.listener = listener
        self.path = path
        self.active = 0
        self.last_used = time.monotonic()
        self.lock = threading.Lock()

    def serve(self):
        threading.Thread(target=self.exit_when_idle, daemon=True).start()
        while True:
            connection, _ = self.listener.accept()
            threading.Thread(target=self.session, args=(connection,), daemon=True).start()

    def session(self, connection):
        with self.lock:
            self.active += 1
        try:
            Session(connection).run()
        finally:
            connection.close()
            with self.lock:
                self.active -= 1
                self.last_used = time.monotonic()

    def exit_when_idle(self):
        while True:
            time.sleep(10)
            with self.lock:
                if self.active == 0 and time.monotonic() - self.last_used > IDLE_EXIT_SECONDS:
                    with contextlib.suppress(OSError):
                        os.unlink(self.path)
                    os._exit(0)


def answers(path):
    probe = socket.socket(socket.AF_UNIX)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def listen(path):
    """The agent's socket; None when another agent already answers there."""
    with open(path + ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if answers(path):
            return None
        if os.path.exists(path):
            os.unlink(path)  # left by an agent that ended
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(path)  # in a directory of mode 0700
        os.chmod(path, 0o600)
        listener.listen(64)
        return listener


def main():
    listener = listen(sys.argv[1])
    if listener is None:
        return
    # The starting session ends here, once the socket answers; the agent lives on.
    if os.fork():
        os._exit(0)
    os.setsid()
    Agent(listener, sys.argv[1]).serve()


if __name__ == "__main__":
    main()
