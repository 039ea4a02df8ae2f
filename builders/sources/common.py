"""What every source method shares inside the sandbox: running tools, failing, spec to SRPM.

Standard library only: the runner copies this package into the sandbox and runs it with the
system python3. Nothing here is trusted by the runner: it only produces files in OUT_DIR,
and the runner re-reads the SRPM header itself. On a user error it prints one line
`coprsite-error: <reason>` and exits with ERROR_EXIT.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any, NoReturn

ERROR_MARK = "coprsite-error: "
ERROR_EXIT = 2
BUILD_DIR = Path("/build")
OUT_DIR = BUILD_DIR / "out"
SOURCES_DIR = BUILD_DIR / "src"
TOOLS_DIR = Path("/coprsite")
FALLBACK_MACROS = TOOLS_DIR / "macros.coprsite"
SOURCE_TAG = re.compile(r"^(Source|Patch)(\d*)\s*:\s*(\S+)", re.IGNORECASE)
# Only these reach a remote repository; file:// and ext:: would reach the builder itself.
GIT_PROTOCOLS = "http:https:git:ssh"


class UserError(Exception):
    """Something about the user's source that they can fix; the message says what."""


def fail(reason: str) -> NoReturn:
    raise UserError(reason)


def run(argv: list[str], *, cwd: Path | None = None, env: dict | None = None, what: str) -> str:
    """Run a tool, echo its output into the log, fail with its last error line."""
    print("+ " + shlex.join(argv), flush=True)
    process = subprocess.run(
        argv,
        cwd=cwd,
        env={**tool_env(), **(env or {})},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        check=False,
    )
    sys.stdout.write(process.stdout)
    sys.stdout.flush()
    if process.returncode != 0:
        fail(f"{what} failed: {last_error_line(process.stdout, process.returncode)}")
    return process.stdout


def last_error_line(output: str, exit_code: int) -> str:
    if exit_code in (-25, 153):  # SIGXFSZ, directly or as reported by a shell
        return "a file grew beyond the size limit of the source task"
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if re.search(r"error|fatal|not found|No such", line, re.I)]
    chosen = (errors or lines or [f"exit status {exit_code}"])[0 if errors else -1]
    # Some errors go on on the next line ("fatal: unable to connect to 127.0.0.1:" then
    # "127.0.0.1[0: 127.0.0.1]: errno=Connection refused"): keep the whole message.
    if errors and chosen.endswith(":"):
        following = lines[lines.index(chosen) + 1 : lines.index(chosen) + 2]
        chosen = " ".join([chosen, *following])
    return chosen[:300]


def tool_env() -> dict[str, str]:
    path = os.environ.get("PATH", "/usr/bin:/bin")
    tools_bin = PARAMS.get("tools_bin")
    if tools_bin:
        path = f"{tools_bin}:{path}"
    return {
        **os.environ,
        "PATH": path,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ALLOW_PROTOCOL": GIT_PROTOCOLS,
        "GIT_CONFIG_NOSYSTEM": "1",
    }


PARAMS: dict[str, Any] = {}


# --- paths inside the checkout ------------------------------------------------------------


def inside(root: Path, relative: str, what: str) -> Path:
    """root/relative, refusing absolute paths, '..' and symlinks that leave root."""
    if relative.startswith("/") or ".." in Path(relative).parts:
        fail(f"{what} '{relative}' must be a path inside the repository")
    path = (root / relative).resolve()
    if path != root.resolve() and root.resolve() not in path.parents:
        fail(f"{what} '{relative}' leads out of the repository")
    return path


# --- spec handling ------------------------------------------------------------------------


def rpm_defines(sourcedir: Path) -> list[str]:
    defines = {
        "_topdir": str(BUILD_DIR / "rpmbuild"),
        "_sourcedir": str(sourcedir),
        "_srcrpmdir": str(OUT_DIR),
        # Copr makes SRPMs without a dist tag; the chroot's %dist applies in the RPM build.
        "dist": "%{nil}",
        # Remote Source/Patch URLs are downloaded here, in the source task, with network.
        "_disable_source_fetch": "0",
        "__urlhelper_localopts": "--proto =http,https,ftp",
    }
    if PARAMS.get("pypi_index"):
        defines["__pypi_url"] = PARAMS["pypi_index"].rstrip("/") + "/packages/source/"
    args = ["--load", str(FALLBACK_MACROS)] if FALLBACK_MACROS.exists() else []
    for name, value in defines.items():
        args += ["--define", f"{name} {value}"]
    return args


def expanded_spec(spec: Path, sourcedir: Path) -> str:
    """The spec with macros expanded (rpmspec -P); its raw text when rpmspec cannot parse it."""
    process = subprocess.run(
        ["rpmspec", "-P", str(spec), *rpm_defines(sourcedir)],
        capture_output=True,
        text=True,
        errors="replace",
        env=tool_env(),
        check=False,
    )
    if process.returncode == 0:
        return process.stdout
    return spec.read_text(errors="replace")


def spec_sources(spec: Path, sourcedir: Path) -> list[tuple[str, str]]:
    """(tag, value) of every Source/Patch line; local ones must stay in the source directory."""
    found = []
    for line in expanded_spec(spec, sourcedir).splitlines():
        match = SOURCE_TAG.match(line.strip())
        if not match:
            continue
        tag, value = f"{match.group(1)}{match.group(2)}", match.group(3)
        url = urllib.parse.urlsplit(value)
        local = not (url.scheme and url.netloc)
        if local and (value.startswith("/") or ".." in Path(value).parts):
            fail(f"the spec's {tag} '{value}' points outside the source directory")
        found.append((tag, value))
    return found


def source_file_name(value: str) -> str:
    # rpm names a source after the last path part of its URL, a #fragment overriding it.
    url = urllib.parse.urlsplit(value)
    if url.fragment:
        return Path(url.fragment).name
    return Path(url.path).name


def fetch_remote_source(tag: str, value: str, sourcedir: Path) -> None:
    """Download a Source/Patch URL the directory lacks (what spectool -g does)."""
    url = urllib.parse.urlsplit(value)
    if not (url.scheme and url.netloc):
        return
    name = source_file_name(value)
    target = sourcedir / name
    if not name or name.startswith(".") or target.exists():
        return
    run(
        ["curl", "--silent", "--show-error", "--fail", "--location"]
        + ["--proto", "=http,https,ftp", "--proto-redir", "=http,https,ftp"]
        + ["--output", str(target), "--url", value.split("#")[0]],
        what=f"downloading {tag} {value}",
    )


def spec_name_version(spec: Path, sourcedir: Path) -> tuple[str, str]:
    output = subprocess.run(
        ["rpmspec", "-q", "--srpm", "--qf", "%{name} %{version}\n", str(spec)]
        + rpm_defines(sourcedir),
        capture_output=True,
        text=True,
        errors="replace",
        env=tool_env(),
        check=False,
    )
    words = output.stdout.split()
    if output.returncode != 0 or len(words) < 2:
        detail = last_error_line(output.stderr, output.returncode)
        fail(f"cannot read the name and version from {spec.name}: {detail}")
    return words[0], words[1]


def rpmbuild_bs(spec: Path, sourcedir: Path) -> None:
    # spec_sources refuses local sources outside the directory before rpmbuild runs.
    for tag, value in spec_sources(spec, sourcedir):
        fetch_remote_source(tag, value, sourcedir)
    OUT_DIR.mkdir(exist_ok=True)
    run(
        ["rpmbuild", "-bs", str(spec), *rpm_defines(sourcedir)],
        cwd=sourcedir,
        what=f"rpmbuild -bs {spec.name}",
    )


# --- spec file (URL or upload) --------------------------------------------------------------


def command_spec_srpm() -> None:
    spec = BUILD_DIR / "spec" / PARAMS["spec_name"]
    rpmbuild_bs(spec, spec.parent)


def write_copr_macros() -> None:
    """Copr's build macros (`%copr_username`, …) for every rpm this task runs, the ones that
    tito, rpkg, pyp2rpm or a .copr/Makefile start too: rpm reads ~/.rpmmacros (HOME is the
    build directory), so a spec naming itself after the project makes its SRPM."""
    lines = []
    for name, value in (PARAMS.get("copr_macros") or {}).items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or re.search(r"[\r\n]", value):
            fail(f"invalid macro in the job: {name!r}")
        lines.append(f"%{name} {value}\n")
    (BUILD_DIR / ".rpmmacros").write_text("".join(lines))


COMMANDS = {"spec-srpm": command_spec_srpm}
