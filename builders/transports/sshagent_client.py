"""Run one command through a builder's agent (sshagent.py), behaving like `ssh host CMD`.

    python3 sshagent_client.py SOCKET COMMAND

SOCKET is the local end of the agent's socket, forwarded by the builder's master
connection. This process has the command's standard input, output, error and exit status
(255 when the connection or the agent failed, as with ssh), so the transport uses it as
it used `ssh host COMMAND`.
"""

import json
import os
import socket
import struct
import sys
import threading

HEADER = struct.Struct(">cI")
SSH_EXIT_ERROR = 255
CHUNK = 65536


def send_input(channel) -> None:
    """Our standard input as "I" frames, then the empty frame that closes the command's."""
    try:
        for chunk in iter(lambda: os.read(0, CHUNK), b""):
            channel.write(HEADER.pack(b"I", len(chunk)) + chunk)
            channel.flush()
        channel.write(HEADER.pack(b"I", 0))
        channel.flush()
    except (BrokenPipeError, OSError):
        pass  # the command or the connection ended; the exit status says which


def read_exactly(stream, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError
    return data


def relay(channel) -> int:
    """The command's output to ours; its exit status, or None when the channel broke."""
    outputs = {b"O": 1, b"E": 2}
    while True:
        kind, size = HEADER.unpack(read_exactly(channel, HEADER.size))
        data = read_exactly(channel, size) if size else b""
        if kind == b"X":
            (status,) = struct.unpack(">i", data)
            return status if status >= 0 else 128 - status
        view = memoryview(data)
        while view:
            view = view[os.write(outputs[kind], view) :]


def main() -> int:
    path, command = sys.argv[1], sys.argv[2]
    connection = socket.socket(socket.AF_UNIX)
    try:
        connection.connect(path)
    except OSError as error:
        print(f"the builder's command agent does not answer: {error}", file=sys.stderr)
        return SSH_EXIT_ERROR
    writer, reader = connection.makefile("wb"), connection.makefile("rb")
    try:
        writer.write(json.dumps({"command": command}).encode() + b"\n")
        writer.flush()
        threading.Thread(target=send_input, args=(writer,), daemon=True).start()
        return relay(reader)
    except (EOFError, OSError, struct.error, KeyError):
        print("the connection to the builder broke", file=sys.stderr)
        return SSH_EXIT_ERROR


if __name__ == "__main__":
    sys.stdout.flush()
    os._exit(main())
