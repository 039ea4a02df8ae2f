"""A command pool's `new` and `delete` for tests: each machine a network namespace with sshd.

    python3 -m tests.builders.netns_machine new|delete

COPRSITE_MACHINE_NAME names the machine (the pool sets it); TEST_MACHINES_DIR holds one
directory per machine; TEST_MACHINES_LOG gets a line "new NAME" or "delete NAME" per call,
so a test can check that every `new` got its `delete`, and "netns NAME NAMESPACE" for each
machine made. TEST_MACHINES_FAIL=new makes `new`
fail as a broken cloud would.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from tests.builders.ssh_helpers import SshTestHost, create_host, remove_host

NAMESPACE_FILE = "namespace"


def log(action: str, name: str, *details: str) -> None:
    with open(os.environ["TEST_MACHINES_LOG"], "a") as out:
        out.write(" ".join([action, name, *details]) + "\n")


def new(name: str, directory: Path) -> int:
    log("new", name)
    if os.environ.get("TEST_MACHINES_FAIL") == "new":
        print("quota exceeded: no machine for you", file=sys.stderr)
        return 1
    host = create_host(directory, name)
    (directory / NAMESPACE_FILE).write_text(host.namespace)
    log("netns", name, host.namespace)
    print(f"address={host.address}")
    print(f"host_key={host.host_public_key}")
    print(f"key_path={host.client_key}")
    # This machine's sshd reads its own file (the filesystem is this machine's, shared).
    print(f"debug_keys_file={directory / 'authorized_keys'}")
    return 0


def delete(name: str, directory: Path) -> int:
    log("delete", name)
    if (directory / NAMESPACE_FILE).exists():
        namespace = (directory / NAMESPACE_FILE).read_text()
        host = SshTestHost(name, namespace, "", directory, "", directory / "client_key")
        remove_host(host)
    shutil.rmtree(directory, ignore_errors=True)
    return 0


def main() -> int:
    action = sys.argv[1]
    name = os.environ["COPRSITE_MACHINE_NAME"]
    directory = Path(os.environ["TEST_MACHINES_DIR"]) / name
    return new(name, directory) if action == "new" else delete(name, directory)


if __name__ == "__main__":
    sys.exit(main())
