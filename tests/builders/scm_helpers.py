"""Local git repositories and a `git daemon` serving them, for source-task tests."""

from __future__ import annotations

import hashlib
import socket
import subprocess
import time
import zlib
from pathlib import Path

from tests.builders.helpers import free_port

UNPACKED_SPEC = """\
Name: {name}
Version: {version}
Release: 1%{{?dist}}
Summary: A tiny unpacked test package
License: MIT
Source0: %{{name}}-%{{version}}.tar.gz
BuildArch: noarch

%description
Built from a directory that rpkg packs into Source0.

%prep
%setup -q

%build

%install
install -D -m 0644 hello.txt %{{buildroot}}%{{_datadir}}/{name}/hello.txt

%files
%{{_datadir}}/{name}/hello.txt
"""

PACKED_SPEC = """\
Name: {name}
Version: {version}
Release: 1%{{?dist}}
Summary: A tiny packed test package
License: MIT
Source0: hello.txt
BuildArch: noarch

%description
Built from a directory that holds its Source0 as it is.

%prep

%build

%install
install -D -m 0644 %{{SOURCE0}} %{{buildroot}}%{{_datadir}}/{name}/hello.txt

%files
%{{_datadir}}/{name}/hello.txt
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args],
        check=True,
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/bin:/bin",
            "HOME": str(repo),
            "GIT_AUTHOR_NAME": "Tester",
            "GIT_AUTHOR_EMAIL": "tester@example.org",
            "GIT_COMMITTER_NAME": "Tester",
            "GIT_COMMITTER_EMAIL": "tester@example.org",
        },
    ).stdout.strip()


def make_repo(path: Path, files: dict[str, str | bytes], *, message: str = "initial") -> Path:
    """A git repository at `path` with `files` (relative path → content) committed."""
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").exists():
        git(path, "init", "--quiet", "--initial-branch=main")
        # Like the big forges: partial clones (--filter) and lazy fetches are allowed.
        git(path, "config", "uploadpack.allowFilter", "true")
        git(path, "config", "uploadpack.allowAnySHA1InWant", "true")
    commit(path, files, message=message)
    return path


def commit(repo: Path, files: dict[str, str | bytes], *, message: str = "change") -> str:
    for relative, content in files.items():
        target = repo / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    git(repo, "add", "--all")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def unpacked_files(name: str = "hello", version: str = "1.0") -> dict[str, str | bytes]:
    return {
        f"{name}.spec": UNPACKED_SPEC.format(name=name, version=version),
        "hello.txt": f"hello from {name}\n",
    }


def packed_files(name: str = "hello", version: str = "1.0") -> dict[str, str | bytes]:
    return {
        f"{name}.spec": PACKED_SPEC.format(name=name, version=version),
        "hello.txt": f"hello from {name}\n",
        "README.md": "ignored by the packed/unpacked rule\n",
    }


class GitDaemon:
    """`git daemon` on `address` (127.0.0.1) exporting every repository under `base`; in
    the network namespace `netns` when given."""

    def __init__(self, base: Path, address: str = "127.0.0.1", netns: str | None = None) -> None:
        self.base = base
        self.address = address
        self.port = free_port()
        self.prefix = ["ip", "netns", "exec", netns] if netns else []
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *self.prefix,
                "git",
                "daemon",
                "--reuseaddr",
                "--export-all",
                f"--listen={self.address}",
                f"--port={self.port}",
                f"--base-path={self.base}",
                "--enable=upload-pack",
                str(self.base),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            probe = subprocess.run(
                [*self.prefix, "git", "ls-remote", f"git://{self.address}:{self.port}/"],
                capture_output=True,
                check=False,
            )
            if b"Connection refused" not in probe.stderr:
                return
            time.sleep(0.1)

    def url(self, name: str) -> str:
        return f"git://{self.address}:{self.port}/{name}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def commit_zero_file(repo: Path, name: str, size: int) -> str:
    """Commit `size` zero bytes as `name` without writing them: a sparse file as git stores it.

    `git add` of a 2 GiB sparse file reads and compresses every byte at the default level;
    writing the loose object directly (zlib level 1, streamed) is several times faster.
    """
    header = b"blob %d\0" % size
    digest = hashlib.sha1(header)  # noqa: S324 - git's object name, not a security use
    compressor = zlib.compressobj(1)
    chunk = bytes(1 << 24)
    parts = [compressor.compress(header)]
    remaining = size
    while remaining:
        piece = chunk[: min(len(chunk), remaining)]
        digest.update(piece)
        parts.append(compressor.compress(piece))
        remaining -= len(piece)
    parts.append(compressor.flush())
    object_id = digest.hexdigest()
    directory = repo / ".git" / "objects" / object_id[:2]
    directory.mkdir(parents=True, exist_ok=True)
    (directory / object_id[2:]).write_bytes(b"".join(parts))
    git(repo, "update-index", "--add", "--cacheinfo", f"100644,{object_id},{name}")
    git(repo, "commit", "--quiet", "-m", f"add {name}")
    return object_id


TITO_PROPS = """\
[buildconfig]
builder = tito.builder.Builder
tagger = tito.tagger.VersionTagger
changelog_do_not_remove_cherrypick = 0
changelog_format = %s (%ae)
"""


def make_tito_repo(path: Path, *, name: str = "hello", version: str = "1.0") -> tuple[str, str]:
    """A repository as `tito init` + `tito tag --keep-version` leave it, plus one newer commit.

    Returns (tagged commit, newest commit): `tito` builds the tag `<name>-<version>-1`,
    `tito_test` the newest commit.
    """
    spec = UNPACKED_SPEC.format(name=name, version=version) + (
        "\n%changelog\n* Thu Jan 01 1970 Tester <tester@example.org> 1.0-1\n- first release\n"
    )
    make_repo(
        path,
        {
            f"{name}.spec": spec,
            "hello.txt": "hello from the tagged release\n",
            ".tito/tito.props": TITO_PROPS,
            f".tito/packages/{name}": f"{version}-1 ./\n",
        },
        message=f"Automatic commit of package [{name}] release [{version}-1].",
    )
    tagged = git(path, "rev-parse", "HEAD")
    tag = f"{name}-{version}-1"
    git(path, "tag", "-a", "-m", f"Tagging package [{name}] version [{version}-1]", tag)
    newest = commit(path, {"hello.txt": "hello from after the release\n"}, message="after")
    return tagged, newest


class SvnServer:
    """`svnserve` on 127.0.0.1 serving, read-only and anonymously, the repositories under base."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["svnserve", "--foreground", "-d", "-r", str(self.base)]
            + ["--listen-host=127.0.0.1", f"--listen-port={self.port}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)

    def url(self, name: str) -> str:
        return f"svn://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)


def make_svn_repo(path: Path, files: dict[str, str | bytes], work: Path) -> Path:
    """An svn repository at `path` with `files` imported as revision 1 (`work` is scratch)."""
    subprocess.run(["svnadmin", "create", str(path)], check=True, capture_output=True)
    work.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        target = work / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    subprocess.run(
        ["svn", "import", "--quiet", "--non-interactive", "-m", "initial", str(work)]
        + [f"file://{path}"],
        check=True,
        capture_output=True,
        env={"PATH": "/usr/bin:/bin", "HOME": str(work.parent)},
    )
    return path
