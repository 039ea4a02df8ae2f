"""A real Pulp (pulpcore-api, -content and -worker) for the tests, from scripts/install-pulp.

One Pulp per test process: under pytest-xdist each worker gets its own database
(`pulp_test_<worker>`), its own MEDIA_ROOT and its own ports, so two workers never share
state. Migrating Pulp takes half a minute, so the migrated schema is kept as a template
database named after the hash of requirements-pulp.txt and cloned per run (seconds).
"""

import fcntl
import hashlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "pulp-test-admin"  # noqa: S105  (a throwaway Pulp that listens on loopback only)
STARTUP_TIMEOUT = 120
# Where scripts/install-pulp puts the venv when PULP_VENV is unset.
DEFAULT_VENVS = (Path("/var/lib/coprsite/pulp-venv"), REPO_ROOT / "var" / "pulp-venv")


def pulp_venv() -> Path:
    if os.environ.get("PULP_VENV"):
        return Path(os.environ["PULP_VENV"])
    if os.geteuid() == 0:
        return DEFAULT_VENVS[0]
    return DEFAULT_VENVS[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_server() -> dict[str, str | int]:
    """Where Pulp's database lives: the test run's PostgreSQL, or the local one (Pulp needs
    PostgreSQL even when coprsite runs on its embedded SQLite)."""
    url = urlsplit(os.environ.get("PULP_TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432"))
    return {
        "host": url.hostname or "127.0.0.1",
        "port": url.port or 5432,
        "user": url.username or "postgres",
        "password": url.password or "",
    }


def admin_connection() -> psycopg.Connection:
    server = postgres_server()
    return psycopg.connect(dbname="postgres", autocommit=True, **server)


def postgres_answers() -> bool:
    try:
        with admin_connection() as connection:
            connection.execute("SELECT 1")
    except psycopg.OperationalError:
        return False
    return True


def database_exists(name: str) -> bool:
    with admin_connection() as connection:
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        return found.fetchone() is not None


def drop_database(name: str) -> None:
    with admin_connection() as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class PulpServer:
    """A running Pulp; `stop()` and `start()` take it down and bring it back (same data)."""

    workdir: Path
    database: str
    api_port: int = field(default_factory=free_port)
    content_port: int = field(default_factory=free_port)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    admin_password: str = ADMIN_PASSWORD

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def content_url(self) -> str:
        return f"http://127.0.0.1:{self.content_port}/pulp/content"

    @property
    def settings_file(self) -> Path:
        return self.workdir / "settings.py"

    def environment(self) -> dict[str, str]:
        # Not the test run's Django settings module: Pulp sets its own when none is given.
        inherited = {
            name: value
            for name, value in os.environ.items()
            if name not in ("DJANGO_SETTINGS_MODULE", "PYTHONPATH")
        }
        return {**inherited, "PULP_SETTINGS": str(self.settings_file)}

    def write_settings(self) -> None:
        server = postgres_server()
        self.workdir.mkdir(parents=True, exist_ok=True)
        key_file = self.workdir / "database_fields.symmetric.key"
        key_file.write_bytes(_fernet_key())
        for name in ("media", "working"):
            (self.workdir / name).mkdir(exist_ok=True)
        database = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": self.database,
            "USER": server["user"],
            "PASSWORD": server["password"],
            "HOST": server["host"],
            "PORT": server["port"],
        }
        self.settings_file.write_text(
            f"SECRET_KEY = {secrets.token_urlsafe(50)!r}\n"
            f"CONTENT_ORIGIN = 'http://127.0.0.1:{self.content_port}'\n"
            f"DATABASES = {{'default': {database!r}}}\n"
            f"MEDIA_ROOT = {str(self.workdir / 'media')!r}\n"
            f"STATIC_ROOT = {str(self.workdir / 'static')!r}\n"
            f"WORKING_DIRECTORY = {str(self.workdir / 'working')!r}\n"
            f"FILE_UPLOAD_TEMP_DIR = {str(self.workdir / 'working')!r}\n"
            f"DB_ENCRYPTION_KEY = {str(key_file)!r}\n"
            # Tests read what they just published: no cached answers.
            "CACHE_ENABLED = False\n"
        )

    def manager(self, *args: str) -> None:
        done = subprocess.run(
            [str(pulp_venv() / "bin" / "pulpcore-manager"), *args],
            env=self.environment(),
            cwd=self.workdir,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pulpcore-manager {' '.join(args)} failed: {done.stderr[-3000:]}")

    def start(self) -> None:
        bin_dir = pulp_venv() / "bin"
        commands = {
            "api": [bin_dir / "pulpcore-api", "--bind", f"127.0.0.1:{self.api_port}", "-w", "1"],
            "content": [
                bin_dir / "pulpcore-content",
                "--bind",
                f"127.0.0.1:{self.content_port}",
                "-w",
                "1",
            ],
            "worker": [bin_dir / "pulpcore-worker"],
        }
        for name, command in commands.items():
            log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115  (the child keeps it)
            self.processes[name] = subprocess.Popen(
                [str(part) for part in command],
                env=self.environment(),
                # Not the checkout: gunicorn would read coprsite's gunicorn.conf.py there.
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # stop() ends the process group, gunicorn's workers too
            )
            log.close()
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"pulpcore-{name} exited: {self.log_tail(name)}")
            try:
                status = requests.get(f"{self.api_url}/pulp/api/v3/status/", timeout=5).json()
                if status["online_workers"] and status["online_content_apps"]:
                    return
            except (requests.RequestException, ValueError, KeyError):
                pass
            time.sleep(0.3)
        raise RuntimeError(f"Pulp did not answer in {STARTUP_TIMEOUT} s: {self.log_tail('api')}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def log_tail(self, name: str) -> str:
        path = self.workdir / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"


def _fernet_key() -> bytes:
    # Fernet's key format: 32 random bytes, urlsafe base64 (what Pulp's docs generate with
    # `openssl rand -base64 32`).
    import base64

    return base64.urlsafe_b64encode(secrets.token_bytes(32))


def template_database() -> str:
    # A new requirements-pulp.txt (other migrations) or password makes a new template.
    made_from = (REPO_ROOT / "requirements-pulp.txt").read_bytes() + ADMIN_PASSWORD.encode()
    digest = hashlib.sha256(made_from).hexdigest()
    return f"pulp_test_template_{digest[:12]}"


def clone_template(workdir: Path, database: str) -> None:
    """Make `database` a copy of the migrated template, which is made first if it is missing
    (once per requirements-pulp.txt). Under a lock: parallel test workers wait for the first
    one's migration, and PostgreSQL copies a template for one CREATE DATABASE at a time."""
    template = template_database()
    lock_path = Path(tempfile.gettempdir()) / f"coprsite-{template}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not database_exists(template):
            migrate_template(workdir, template)
        drop_database(database)
        with admin_connection() as connection:
            connection.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')


def migrate_template(workdir: Path, template: str) -> None:
    building = f"{template}_building"
    drop_database(building)
    with admin_connection() as connection:
        connection.execute(f'CREATE DATABASE "{building}"')
    migrating = PulpServer(workdir=workdir / "template", database=building)
    migrating.workdir.mkdir(parents=True, exist_ok=True)
    migrating.write_settings()
    migrating.manager("migrate", "--noinput")
    # Cloned along with the rest: each run's Pulp has this admin password already.
    migrating.manager("reset-admin-password", "--password", ADMIN_PASSWORD)
    with admin_connection() as connection:
        connection.execute(f'ALTER DATABASE "{building}" RENAME TO "{template}"')
    shutil.rmtree(migrating.workdir, ignore_errors=True)


def start_pulp(workdir: Path, purpose: str = "test") -> PulpServer:
    """Clone the template into this process's database, configure, start, wait for status.
    `purpose` names the database (`bench` for bench/pulp_publish.py)."""
    venv = pulp_venv()
    if not (venv / "bin" / "pulpcore-api").exists():
        raise RuntimeError(f"Pulp is not installed in {venv}: run scripts/install-pulp")
    # One database per checkout and xdist worker: two checkouts testing on one machine (or
    # two workers of one run) never drop each other's Pulp.
    checkout = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:8]
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    database = f"pulp_{purpose}_{checkout}_{worker}"
    clone_template(workdir, database)
    server = PulpServer(workdir=workdir, database=database)
    server.write_settings()
    server.start()
    return server
