"""The production-like service as separate processes: redis-server, gunicorn, Dramatiq workers.

Used by the end-to-end reliability tests and by bench/reliability.py, which stop and start
these processes as an operator's bad day would. Loopback only; every process is started in
its own session so it can be stopped with its children, and nothing else.
"""

import configparser
import contextlib
import json
import os
import pwd
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def stop_process_group(process: subprocess.Popen | None, *, timeout: float = 20) -> None:
    """SIGTERM the process's session, SIGKILL what is left after `timeout`."""
    if process is None or process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    except ProcessLookupError:
        pass


def descendants(pid: int, *, depth: int) -> list[int]:
    """Child pids of `pid` (and theirs, down to `depth` levels), from /proc."""
    children = []
    # Each thread has its own list: a worker's subprocesses are started by its threads.
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            children += [int(child) for child in listing.read_text().split()]
    if depth <= 1:
        return children
    return children + [d for c in children for d in descendants(c, depth=depth - 1)]


class RedisServer:
    """A redis-server of our own on a loopback port, with an append-only file that is
    fsynced on every write, so a restart keeps what it had accepted."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None
        directory.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.directory), "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--logfile", str(self.directory / "redis.log")],
            start_new_session=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as conn:
                    conn.sendall(b"PING\r\n")
                    if conn.recv(64).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def stop(self) -> None:
        stop_process_group(self.process)
        self.process = None


def role_user(name: str) -> pwd.struct_passwd:
    """A system user of its own for one role (made the first time; needs root)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    subprocess.run(
        ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", "/usr/sbin/nologin", name],
        capture_output=True, check=False,
    )  # fmt: skip
    return pwd.getpwnam(name)  # made here, or by a parallel test process just now


def closed_ancestor(path: Path) -> Path | None:
    """The first directory above `path` that other users may not enter (root's home)."""
    for parent in reversed(path.parents):
        if not parent.stat().st_mode & 0o001:
            return parent
    return None


def as_user_command(user: pwd.struct_passwd, stage: Path, args: list[str]) -> list[str]:
    """`args` run as `user` by setpriv. When this Python or this checkout lives in a
    directory others cannot enter (pyenv in /root, a clone in a `mktemp -d`), the command
    gets a mount namespace of its own in which each such directory is an empty tmpfs holding
    only what the role runs (the interpreter's prefix, the checkout): it sees nothing else
    there."""
    switch = ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups"]
    needed = [Path(sys.base_prefix).resolve(), ROOT]
    closed = {ancestor for path in needed if (ancestor := closed_ancestor(path)) is not None}
    if not closed:
        return [*switch, "--", *args]
    # Only the outermost closed directories: a tmpfs over one hides those inside it.
    closed = {c for c in closed if not any(o != c and o in c.parents for o in closed)}
    kept = [(path, stage / str(number)) for number, path in enumerate(needed)]
    steps = [_bind(path, to) for path, to in kept]
    steps += [f"mount -t tmpfs -o mode=0755 tmpfs {shlex.quote(str(d))}" for d in sorted(closed)]
    steps += [_bind(to, path) for path, to in kept]
    script = " && ".join([*steps, 'exec "$@"'])
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script,
            "sh", *switch, "--", *args]  # fmt: skip


def _bind(source: Path, target: Path) -> str:
    source_arg, target_arg = shlex.quote(str(source)), shlex.quote(str(target))
    return f"mkdir -p {target_arg} && mount --bind {source_arg} {target_arg}"


class Service:
    """coprsite served by gunicorn with `rundramatiq` workers, on a fresh VAR_DIR.

    SQLite in VAR_DIR unless `database_url` names a database of its own (it is migrated).
    With `user` (a role_user), every process of it runs as that user, and VAR_DIR is that
    user's alone (mode 0700).
    """

    def __init__(
        self,
        var_dir: Path,
        broker_url: str,
        *,
        database_url: str = "",
        user: pwd.struct_passwd | None = None,
        **settings,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.var_dir = var_dir
        self.user = user
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "BROKER_URL")}
        if user is not None:
            var_dir.mkdir(parents=True, exist_ok=True)
            self.give(var_dir, mode=0o700)
            # Temporary files stay in the system's temp dir: gpg-agent's socket paths must be
            # short; the workers make their directory there private (WORKER_TEMP_DIR).
            self.env["HOME"] = str(var_dir)
        self.env.update(
            VAR_DIR=str(var_dir),
            BROKER_URL=broker_url,
            PUBLIC_URL=self.url,
            LOG_LEVEL="WARNING",
            **{name: str(value) for name, value in settings.items()},
        )
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.web: subprocess.Popen | None = None
        self.workers: subprocess.Popen | None = None

    def give(self, path: Path, *, mode: int | None = None) -> None:
        """Make a path this service's user's (and no one else's, with `mode`)."""
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)
            if mode is not None:
                path.chmod(mode)

    def command(self, *args: str) -> list[str]:
        """The command line that runs `args` as the service's user (as is without one)."""
        if self.user is None:
            return list(args)
        return as_user_command(
            self.user, self.var_dir.with_name(f"{self.var_dir.name}.python"), list(args)
        )

    def log_file(self, name: str):
        log = open(self.var_dir / name, "a")  # noqa: SIM115 (the process keeps it)
        self.give(self.var_dir / name)
        return log

    def manage(self, *args: str) -> str:
        return subprocess.run(
            self.command(sys.executable, "manage.py", *args), cwd=ROOT, env=self.env,
            check=True, capture_output=True, text=True, timeout=300,
        ).stdout  # fmt: skip

    def prepare(self, username: str) -> tuple[str, str]:
        """Migrate, create a user; returns its API credentials (login, token)."""
        self.manage("migrate", "--noinput")
        config = configparser.ConfigParser()
        config.read_string(self.manage("create_user", username))
        return config["copr-cli"]["login"], config["copr-cli"]["token"]

    def start_web(self, *, workers: int | None = 2, threads: int | None = 8) -> None:
        """gunicorn with gunicorn.conf.py; None keeps that file's value."""
        log = self.log_file("gunicorn.log")
        sizes = [*(["--workers", str(workers)] if workers else []),
                 *(["--threads", str(threads)] if threads else [])]  # fmt: skip
        self.web = subprocess.Popen(
            self.command(sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                         "--bind", f"127.0.0.1:{self.port}", *sizes,
                         "--access-logfile", "/dev/null", "coprsite.wsgi"),
            cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.web.poll() is not None:
                raise RuntimeError(f"gunicorn exited; see {self.var_dir / 'gunicorn.log'}")
            try:
                requests.get(f"{self.url}/api_3/", timeout=10)
                return
            except (requests.ConnectionError, requests.Timeout):
                time.sleep(0.3)
        raise RuntimeError("gunicorn did not answer within 60 s")

    def start_workers(self, *, processes: int = 1, threads: int = 6) -> None:
        log = self.log_file("workers.log")
        self.workers = subprocess.Popen(
            self.command(sys.executable, "manage.py", "rundramatiq",
                         "--processes", str(processes), "--threads", str(threads),
                         "--worker-shutdown-timeout", "5000"),
            cwd=ROOT, env=self.env, stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        stop_process_group(self.workers)
        stop_process_group(self.web)

    def workers_alive(self) -> bool:
        return self.workers is not None and self.workers.poll() is None

    def worker_children(self) -> list[int]:
        """Pids of the Dramatiq worker processes (children of the `rundramatiq` process)."""
        if not self.workers_alive():
            return []
        return descendants(self.workers.pid, depth=1)

    def count(self, model: str) -> int:
        """Rows of `app_label.Model` in the service's database."""
        code = f"from django.apps import apps; print(apps.get_model({model!r}).objects.count())"
        return int(self.manage("shell", "-c", code).split()[-1])


class CoprApi:
    """The few /api_3 calls the reliability checks make, as copr-cli sends them."""

    def __init__(self, url: str, owner: str, credentials: tuple[str, str]) -> None:
        self.url = f"{url}/api_3"
        self.session = requests.Session()
        self.session.auth = credentials
        self.owner = owner

    def project_add(self, name: str, chroots: list[str]) -> None:
        response = self.session.post(
            f"{self.url}/project/add/{self.owner}", json={"name": name, "chroots": chroots},
            timeout=60,
        )  # fmt: skip
        response.raise_for_status()

    def upload(self, project: str, srpm: Path, chroots: list[str]) -> requests.Response:
        data = {"ownername": self.owner, "projectname": project, "chroots": chroots}
        return self.session.post(
            f"{self.url}/build/create/upload",
            files={
                "json": ("json", json.dumps(data), "application/json"),
                "pkgs": (srpm.name, srpm.read_bytes(), "application/x-rpm"),
            },
            timeout=120,
        )

    def builds(self, project: str) -> list[dict]:
        response = self.session.get(
            f"{self.url}/build/list",
            params={"ownername": self.owner, "projectname": project},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()["items"]
