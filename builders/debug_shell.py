"""SSH access for debugging: the user's login on a kept machine, walled in like the build.

After a build that asked for SSH access (JobSpec.keep_workspace), the runner leaves the
job's workspace in place and writes `session.json` beside it (`keep_for_debugging`). The
user's public key is then installed on that machine with a forced command and `restrict`
(no port, agent or X11 forwarding):

    restrict,pty,command="cd <runner> && exec python3 -m builders.debug_shell <dir>" <key>

so whatever the user asks for runs here, in the build's own sandbox: the build uid, the
build's workspace at /build, and the build's network walls (none, or outbound only and
never the service's addresses). The user never gets the service's login (root, usually)
on the machine, and so cannot lift those walls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from builders.limits import ResourceLimits
from builders.network import OutboundNetwork, host_network_allowed
from builders.protocol import JobSpec
from builders.sandbox import Workspace, sandbox_argv

SESSION_FILE = "session.json"
ORIGINAL_COMMAND_ENV = "SSH_ORIGINAL_COMMAND"
SHELL = "/bin/bash"


def keep_for_debugging(spec: JobSpec, workspace: Workspace) -> None:
    """Leave the job's workspace for the user's SSH sessions instead of removing it."""
    directory = Path(spec.keep_workspace)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    session = {
        "workspace": str(workspace.root),
        "network": spec.enable_net,
        "limits": spec.limits,
        "disk_mounted": workspace.disk_mounted,
    }
    (directory / SESSION_FILE).write_text(json.dumps(session))


def session_command(original: str, *, interactive: bool) -> list[str]:
    """What runs in the sandbox: the command the user gave `ssh`, else a shell."""
    if original:
        return [SHELL, "-c", original]
    return [SHELL, "-i"] if interactive else [SHELL, "-s"]


def run_session(directory: Path) -> int:
    """Run the user's command (or shell) in the kept workspace's sandbox; its exit status."""
    session = json.loads((directory / SESSION_FILE).read_text())
    workspace = Workspace(Path(session["workspace"]))
    workspace.limits = ResourceLimits.from_dict(session["limits"])
    workspace.disk_mounted = bool(session["disk_mounted"])
    network = bool(session["network"])
    namespace = OutboundNetwork() if network and not host_network_allowed() else None
    command = session_command(
        os.environ.get(ORIGINAL_COMMAND_ENV, ""), interactive=sys.stdin.isatty()
    )
    argv = sandbox_argv(command, workspace, network=network, namespace=namespace)
    terminal = os.environ.get("TERM", "dumb")
    try:
        process = subprocess.Popen(
            argv,
            # Nothing of sshd's environment (the service's login) reaches the sandbox.
            env={"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "LANG": "C.UTF-8", "TERM": terminal},
            pass_fds=namespace.pass_fds if namespace is not None else (),
        )
        if namespace is not None:
            namespace.attach(process.pid)
        return process.wait()
    finally:
        if namespace is not None:
            namespace.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python3 -m builders.debug_shell <kept job directory>", file=sys.stderr)
        return 2
    directory = Path(args[0])
    if not (directory / SESSION_FILE).is_file():
        print("This machine keeps no build for debugging (any more).", file=sys.stderr)
        return 1
    return run_session(directory)


if __name__ == "__main__":
    sys.exit(main())
