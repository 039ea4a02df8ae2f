"""Per-project GnuPG signing keys and RPM signing; private keys never leave the keys root."""

import contextlib
import fcntl
import os
import re
import shutil
import stat
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import gnupg

from apps.core.tempfiles import process_alive, worker_temp_dir

KEY_TYPE = "RSA"
KEY_LENGTH = 4096
# Copr's keygen uses the same lifetime (GPG_EXPIRE); the key is not renewed automatically.
KEY_EXPIRY = "5y"
HASH_ALGORITHMS = frozenset({"sha1", "sha224", "sha256", "sha384", "sha512"})
# rpmsign hashes only the header (v4 signature), so this is generous even for huge RPMs.
SIGN_TIMEOUT_SECONDS = 600
GPGCONF_TIMEOUT_SECONDS = 60
# A stopped agent ends within milliseconds; one that takes longer is left to end alone.
AGENT_EXIT_WAIT_SECONDS = 10
# rpmsign runs at once per signing call: one per core (gpg-agent signs in parallel).
SIGN_PROCESSES = os.cpu_count() or 1

LOCK_FILE_NAME = ".coprsite.lock"

# Copr owner names are user names or "@group"; project names are [\w.+-]. Both become path
# components and parts of the key's user id, so anything else (slashes, spaces, "<>") is refused
# rather than escaped. gpg accepts "@" and "#" in the e-mail local part, so Copr's identity
# "@group#project@copr.<domain>" is used unchanged (checked with gnupg 2.2.40).
_OWNER_RE = re.compile(r"@?[A-Za-z0-9_.+-]+")
_PROJECT_RE = re.compile(r"[A-Za-z0-9_.+-]+")
_DOMAIN_RE = re.compile(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*")


class SigningError(Exception):
    """gpg or rpmsign failed; `stderr` holds the tool's own explanation."""

    def __init__(self, message: str, stderr: str = "") -> None:
        super().__init__(f"{message}: {stderr.strip()}" if stderr.strip() else message)
        self.stderr = stderr


class KeyNotFoundError(SigningError):
    """The project has no signing key yet."""


@dataclass(frozen=True)
class KeyInfo:
    """Public facts about a project's signing key."""

    fingerprint: str
    key_id: str
    uid_name: str
    uid_email: str
    public_key: str


def key_identity(*, owner: str, project: str, sign_domain: str) -> tuple[str, str]:
    """Return Copr's (real name, e-mail) for a project key, e.g. ("@g_p", "@g#p@copr.d")."""
    _check_names(owner, project)
    if not _DOMAIN_RE.fullmatch(sign_domain):
        raise ValueError(f"invalid signing domain: {sign_domain!r}")
    return f"{owner}_{project}", f"{owner}#{project}@copr.{sign_domain}"


def gnupg_home(*, keys_root: Path, owner: str, project: str) -> Path:
    """Return the GnuPG home directory that holds one project's key."""
    _check_names(owner, project)
    return Path(keys_root) / owner / project


def generate_project_key(*, keys_root: Path, owner: str, project: str, sign_domain: str) -> KeyInfo:
    """Create the project's RSA 4096 signing key, or return the existing one unchanged.

    An existing key is returned as it is, even if `sign_domain` has changed since. Safe to
    call from several processes at once: the per-project lock makes the second caller wait
    and then find the first caller's key. Measured on the development box (2 vCPU, gnupg
    2.2.40, 10 keys): 0.9-3.7 s per key, median 2.2 s; the spread is the random prime
    search, not entropy starvation (gpg-agent uses the non-blocking kernel CSPRNG).
    Signing afterwards takes about 0.1 s per rpmsign call.
    """
    name_real, name_email = key_identity(owner=owner, project=project, sign_domain=sign_domain)
    home = gnupg_home(keys_root=keys_root, owner=owner, project=project)
    with _gpg_session(Path(keys_root), home) as session_home:
        gpg = _gpg(session_home)
        key = _find_secret_key(gpg) or _generate_key(gpg, name_real, name_email)
        return _key_info(gpg, key)


def get_project_key(*, keys_root: Path, owner: str, project: str) -> KeyInfo:
    """Return the project's key info; raise KeyNotFoundError if it has none."""
    home = gnupg_home(keys_root=keys_root, owner=owner, project=project)
    with _gpg_session(Path(keys_root), home) as session_home:
        gpg = _gpg(session_home)
        return _key_info(gpg, _require_secret_key(gpg, owner, project))


def export_public_key(*, keys_root: Path, owner: str, project: str) -> str:
    """Return the project's ASCII-armored public key (the content of Copr's pubkey.gpg)."""
    return get_project_key(keys_root=keys_root, owner=owner, project=project).public_key


def sign_rpms(
    *,
    keys_root: Path,
    owner: str,
    project: str,
    rpm_paths: list[Path],
    hash_algo: str = "sha256",
) -> None:
    """Sign RPMs in place with the project's key (replacing any earlier signature)."""
    if not rpm_paths:
        return
    with signing_session(keys_root=keys_root, owner=owner, project=project) as signer:
        signer.sign(rpm_paths, hash_algo=hash_algo)


@contextmanager
def signing_session(
    *,
    keys_root: Path,
    owner: str,
    project: str,
    fingerprint: str | None = None,
    wait: bool = True,
) -> Iterator["Signer | None"]:
    """Hold the project's key for a series of `Signer.sign` calls.

    The project's lock is held throughout, so a caller can read what is left to sign
    inside the session without racing another signer of the same project. A known
    `fingerprint` saves asking gpg for it; rpmsign fails if the home does not hold it.
    With `wait=False` it yields None at once when another session holds the lock.
    """
    home = gnupg_home(keys_root=keys_root, owner=owner, project=project)
    with _gpg_session(Path(keys_root), home, wait=wait) as session_home:
        yield None if session_home is None else Signer(session_home, owner, project, fingerprint)


class Signer:
    """rpmsign with one project's key; the key is looked up at most once per session."""

    def __init__(
        self, session_home: Path, owner: str, project: str, fingerprint: str | None = None
    ) -> None:
        self.home = session_home
        self.owner = owner
        self.project = project
        self._fingerprint = fingerprint or None

    def sign(self, rpm_paths: list[Path], *, hash_algo: str = "sha256") -> None:
        """Sign RPMs in place (replacing any earlier signature)."""
        if hash_algo not in HASH_ALGORITHMS:
            raise ValueError(f"unsupported hash algorithm: {hash_algo!r}")
        if not rpm_paths:
            return
        if self._fingerprint is None:
            key = _require_secret_key(_gpg(self.home), self.owner, self.project)
            self._fingerprint = key["fingerprint"]
        # rpmsign signs one file after another, and each RSA 4096 signature is some 35 ms of
        # gpg-agent CPU: a build with subpackages is signed on every core at once.
        chunks = [rpm_paths[i::SIGN_PROCESSES] for i in range(SIGN_PROCESSES)]
        with ThreadPoolExecutor(SIGN_PROCESSES) as pool:
            errors = list(pool.map(self._rpmsign, filter(None, chunks), repeat(hash_algo)))
        for error in filter(None, errors):
            raise error

    def _rpmsign(self, rpm_paths: list[Path], hash_algo: str) -> SigningError | None:
        command = [
            "rpmsign",
            "--addsign",
            "--define",
            f"_gpg_name {self._fingerprint}",
            # rpmsign exports _gpg_path as GNUPGHOME for the gpg it spawns.
            "--define",
            f"_gpg_path {self.home}",
            # Debian's rpm defaults %__gpg to /usr/bin/gpg2, which Debian does not ship.
            "--define",
            f"__gpg {_gpg_binary()}",
            "--define",
            f"_gpg_digest_algo {hash_algo}",
            # Never wait for a passphrase prompt: a protected key must fail, not hang a worker.
            "--define",
            "_gpg_sign_cmd_extra_args --batch --no-tty --pinentry-mode loopback",
            *[str(path) for path in rpm_paths],
        ]
        # Any GPG_TTY, even empty, stops rpmsign warning that stdin is not a terminal.
        env = {**os.environ, "GNUPGHOME": str(self.home), "GPG_TTY": "", "LC_ALL": "C"}
        try:
            completed = subprocess.run(
                command,
                capture_output=True,
                text=True,
                env=env,
                timeout=SIGN_TIMEOUT_SECONDS,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            return SigningError("rpmsign timed out", _as_text(error.stderr))
        if completed.returncode != 0:
            return SigningError(
                f"rpmsign failed for {self.owner}/{self.project} (exit {completed.returncode})",
                completed.stderr,
            )
        return None


def _check_names(owner: str, project: str) -> None:
    if not _OWNER_RE.fullmatch(owner) or owner.lstrip("@") in {".", ".."}:
        raise ValueError(f"invalid owner name: {owner!r}")
    if not _PROJECT_RE.fullmatch(project) or project in {".", ".."}:
        raise ValueError(f"invalid project name: {project!r}")


def _gpg_binary() -> str:
    binary = shutil.which("gpg")
    if binary is None:
        raise SigningError("gpg is not installed")
    return binary


def _gpg(home: Path) -> gnupg.GPG:
    return gnupg.GPG(gpgbinary=_gpg_binary(), gnupghome=str(home))


def _find_secret_key(gpg: gnupg.GPG) -> dict | None:
    keys = gpg.list_keys(secret=True)
    if len(keys) > 1:
        # Only this module writes here; several keys means someone edited the home by hand,
        # and guessing which one signs would silently change the project's key.
        raise SigningError(f"expected one secret key in {gpg.gnupghome}, found {len(keys)}")
    return keys[0] if keys else None


def _require_secret_key(gpg: gnupg.GPG, owner: str, project: str) -> dict:
    key = _find_secret_key(gpg)
    if key is None:
        raise KeyNotFoundError(f"project {owner}/{project} has no signing key")
    return key


def _generate_key(gpg: gnupg.GPG, name_real: str, name_email: str) -> dict:
    params = gpg.gen_key_input(
        key_type=KEY_TYPE,
        key_length=KEY_LENGTH,
        key_usage="sign",
        name_real=name_real,
        name_email=name_email,
        expire_date=KEY_EXPIRY,
        # Signing runs unattended; the key's protection is the 0700 keys root.
        no_protection=True,
    )
    result = gpg.gen_key(params)
    key = _find_secret_key(gpg) if result.fingerprint else None
    if key is None:
        raise SigningError(f"gpg could not generate a key for {name_email}", result.stderr)
    return key


def _key_info(gpg: gnupg.GPG, key: dict) -> KeyInfo:
    uid = key["uids"][0]
    uid_name, _, rest = uid.partition(" <")
    public_key = gpg.export_keys(key["fingerprint"])
    if not public_key:
        raise SigningError(f"gpg could not export key {key['fingerprint']}")
    return KeyInfo(
        fingerprint=key["fingerprint"],
        key_id=key["keyid"],
        uid_name=uid_name,
        uid_email=rest.rstrip(">"),
        public_key=public_key,
    )


@contextmanager
def _gpg_session(keys_root: Path, home: Path, *, wait: bool = True) -> Iterator[Path | None]:
    """Lock one project's GnuPG home and yield a short path to it (None when `wait` is
    false and another session holds the lock).

    gpg-agent's sockets live in the home directory and a Unix socket path may not exceed
    108 bytes, which long owner/project names under a deep keys root easily do (the agent
    then fails with "No agent running"). A symlink in a fresh private temp dir gives gpg a
    short path (in WORKER_TEMP_DIR, swept if the process dies); the keys themselves stay
    where they are. The agent is stopped at the end so thousands of projects do not leave
    thousands of agents behind; the lock guarantees no other process is using it then.
    """
    _make_private_dirs(keys_root, home)
    lock_fd = os.open(home / LOCK_FILE_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    link_dir = worker_temp_dir("gpg")
    try:
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield None
            return
        short_home = link_dir / "h"
        short_home.symlink_to(home.resolve())
        try:
            yield short_home
        finally:
            _stop_agent(short_home)
            # gpg creates keyring files with the process umask (often 0644).
            _restrict_permissions(home)
    finally:
        shutil.rmtree(link_dir, ignore_errors=True)
        os.close(lock_fd)


def _make_private_dirs(keys_root: Path, home: Path) -> None:
    keys_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    for directory in (home.parent, home):
        directory.mkdir(mode=0o700, exist_ok=True)
        # mkdir's mode is filtered by the umask; state it explicitly.
        directory.chmod(0o700)


def _stop_agent(home: Path) -> None:
    """Stop the home's gpg-agent, if one runs, and wait until its process has ended.

    gpgconf returns as soon as the agent has answered KILLAGENT; the agent closes and
    unlinks its sockets afterwards. Without the wait, the next holder of the project's lock
    can meet the dying agent (or a new agent's socket can be unlinked by the old one), and
    the permission walk below lists a socket that is gone when it looks at it (the
    FileNotFoundError seen under a signing burst).
    """
    pid = agent_pid(home)
    if pid is None:
        return
    subprocess.run(
        ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
        capture_output=True,
        timeout=GPGCONF_TIMEOUT_SECONDS,
        check=False,
    )
    deadline = time.monotonic() + AGENT_EXIT_WAIT_SECONDS
    while process_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def agent_pid(home: Path) -> int | None:
    """The pid of the gpg-agent serving `home`, or None when none runs (none is started)."""
    completed = subprocess.run(
        ["gpg-connect-agent", "--homedir", str(home), "--no-autostart", "GETINFO pid", "/bye"],
        capture_output=True,
        text=True,
        timeout=GPGCONF_TIMEOUT_SECONDS,
        check=False,
    )
    match = re.search(r"^D (\d+)$", completed.stdout, re.MULTILINE)
    return int(match.group(1)) if match else None


def _restrict_permissions(home: Path) -> None:
    """Make everything under the home private, tolerating entries that vanish meanwhile.

    gpg and gpg-agent create and remove lock files and sockets of their own (another
    process of the same host may still be finishing), so an entry listed by the walk can be
    gone when it is looked at; a vanished entry needs no permissions.
    """
    for root, directories, files in os.walk(home):
        for name in directories:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(os.path.join(root, name), 0o700)
        for name in files:
            path = os.path.join(root, name)
            with contextlib.suppress(FileNotFoundError):
                if stat.S_ISREG(os.lstat(path).st_mode):
                    os.chmod(path, 0o600)


def _as_text(output: bytes | str | None) -> str:
    if isinstance(output, bytes):
        return output.decode(errors="replace")
    return output or ""
