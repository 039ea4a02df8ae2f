"""Make an SRPM from a spec, a repository, PyPI, a gem or a script: runs INSIDE the sandbox.

Standard library only: the runner copies this file into the sandbox and runs it with the
system python3. Nothing here is trusted by the runner: it only produces files in OUT_DIR,
and the runner re-reads the SRPM header itself. On a user error it prints one line
`coprsite-error: <reason>` and exits with ERROR_EXIT.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
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
# rpkg-client's rule: these names never make a directory "unpacked".
IGNORED_FILES = re.compile(r"(^README|.spec$|^\.|^tito.props$|^sources$)", re.IGNORECASE)
SOURCE_TAG = re.compile(r"^(Source|Patch)(\d*)\s*:\s*(\S+)", re.IGNORECASE)
TARBALL_MODES = {
    ".tar.gz": "w:gz",
    ".tgz": "w:gz",
    ".tar.xz": "w:xz",
    ".txz": "w:xz",
    ".tar.bz2": "w:bz2",
    ".tbz2": "w:bz2",
    ".tar": "w",
}
# Only these reach a remote repository; file:// and ext:: would reach the builder itself.
GIT_PROTOCOLS = "http:https:git:ssh"
# git-svn reaches these itself (not through git's transports); file:// would be the builder.
SVN_SCHEMES = ("http", "https", "svn", "svn+ssh")
HASH_NAMES = {"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}


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


# --- rpkg: packed or unpacked source directories --------------------------------------------


def is_packed(directory: Path, source_names: set[str]) -> bool:
    """rpkg-client's rule: only ignored files, or at least one file the spec names."""
    names = [entry.name for entry in directory.iterdir()]
    if all(IGNORED_FILES.search(name) for name in names):
        return True
    return any(name in source_names for name in names)


def pack_directory(directory: Path, tarball_name: str, top: str) -> Path:
    mode = next((m for suffix, m in TARBALL_MODES.items() if tarball_name.endswith(suffix)), "")
    if not mode:
        fail(f"cannot pack the sources: Source0 '{tarball_name}' is not a tarball name")
    staging = BUILD_DIR / "pack" / tarball_name
    staging.parent.mkdir(exist_ok=True)
    print(f"Packing {directory} into {tarball_name} (top directory {top})", flush=True)
    with tarfile.open(staging, mode) as tarball:
        for entry in sorted(directory.iterdir()):
            if entry.name in (".git", ".svn", tarball_name):
                continue
            # Symlinks go in as symlinks (tarfile never follows them).
            tarball.add(entry, arcname=f"{top}/{entry.name}")
    target = directory / tarball_name
    shutil.move(staging, target)
    return target


def rpkg_srpm(spec: Path, sourcedir: Path) -> None:
    sources = spec_sources(spec, sourcedir)
    names = {source_file_name(value) for _, value in sources}
    if (sourcedir / ".." / "rpkg.macros").exists() or "{{{" in spec.read_text(errors="replace"):
        spec = render_rpkg_templates(spec, sourcedir)
        sources = spec_sources(spec, sourcedir)
        names = {source_file_name(value) for _, value in sources}
    if is_packed(sourcedir, names):
        print(f"{sourcedir} is packed: building from it as it is", flush=True)
    else:
        source0 = next((value for tag, value in sources if tag.lower() in ("source0", "source")))
        name, version = spec_name_version(spec, sourcedir)
        print(f"{sourcedir} is unpacked", flush=True)
        pack_directory(sourcedir, source_file_name(source0), f"{name}-{version}")
    rpmbuild_bs(spec, sourcedir)


def render_rpkg_templates(spec: Path, sourcedir: Path) -> Path:
    """The {{{ git_dir_* }}} templates of rpkg-util 3 that Copr users most often use."""
    text = spec.read_text(errors="replace")
    repo = git_toplevel(sourcedir)
    name = re.search(r"^Name:\s*(\S+)", text, re.MULTILINE)
    base = name.group(1) if name and "{{{" not in name.group(1) else sourcedir.name
    version = git_dir_version(repo)
    values = {
        "git_dir_name": base,
        "git_repo_name": base,
        "git_dir_version": version,
        "git_repo_version": version,
        "git_dir_release": "1",
        "git_repo_release": "1",
        "git_dir_changelog": "* Thu Jan 01 1970 coprsite <coprsite@localhost> - 0\n- built",
        "git_repo_changelog": "* Thu Jan 01 1970 coprsite <coprsite@localhost> - 0\n- built",
    }

    def substitute(match: re.Match[str]) -> str:
        words = match.group(1).split()
        macro = words[0] if words else ""
        if macro in ("git_dir_pack", "git_repo_pack", "git_pack"):
            tarball = f"{base}-{version}.tar.gz"
            pack_directory(sourcedir, tarball, f"{base}-{version}")
            return tarball
        if macro in ("git_dir_setup_macro", "git_repo_setup_macro", "git_setup_macro"):
            return f"%setup -q -n {base}-{version}"
        if macro in values:
            return values[macro]
        fail(f"the rpkg template '{{{{{{ {macro} }}}}}}' is not supported here")

    rendered = re.sub(r"\{\{\{(.*?)\}\}\}", substitute, text, flags=re.DOTALL)
    target = BUILD_DIR / "rendered" / spec.name
    target.parent.mkdir(exist_ok=True)
    target.write_text(rendered)
    return target


def git_toplevel(directory: Path) -> Path:
    output = subprocess.run(
        ["git", "rev-parse", "--show-toplevel"],
        cwd=directory,
        capture_output=True,
        text=True,
        env=tool_env(),
        check=False,
    )
    return Path(output.stdout.strip()) if output.returncode == 0 else directory


def git_dir_version(repo: Path) -> str:
    output = subprocess.run(
        ["git", "rev-list", "--count", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
        env=tool_env(),
        check=False,
    )
    count = output.stdout.strip() or "0"
    return f"0.git.{count}"


# --- SCM ----------------------------------------------------------------------------------


def command_scm_fetch() -> None:
    """Clone and check out; the runner checks the tree before anything runs from it."""
    url, committish = PARAMS["clone_url"], PARAMS.get("committish") or ""
    repo = SOURCES_DIR / (
        re.sub(r"[^A-Za-z0-9._-]", "_", Path(urllib.parse.urlsplit(url).path).name).removesuffix(
            ".git"
        )
        or "repo"
    )
    SOURCES_DIR.mkdir(exist_ok=True)
    if PARAMS.get("scm_type") == "svn":
        git_svn_clone(url, repo)
    else:
        git_clone(url, repo)
    commit, target = resolve_committish(repo, committish)
    refuse_oversized_blobs(repo, commit)
    run(["git", "checkout", "--quiet", target, "--"], cwd=repo, what="git checkout")
    run(["git", "log", "-1", "--format=Checked out %H %s"], cwd=repo, what="git log")
    subdirectory = inside(repo, PARAMS.get("subdirectory") or "", "subdirectory")
    if not subdirectory.is_dir():
        fail(f"the subdirectory '{PARAMS.get('subdirectory')}' does not exist in the repository")
    print(f"coprsite-repo: {repo.name}", flush=True)


def resolve_committish(repo: Path, committish: str) -> tuple[str, str]:
    """The commit that a branch, tag or hash of the remote names, and what to check out.

    A clone without a checkout has only the default branch locally; other branches exist as
    `origin/<name>`, so asking for the bare name fails (`bad revision`) although `git
    checkout <name>` would create the branch from the remote one, as Copr relies on.
    Names are looked up among refs and local objects first: in a partial clone, asking git
    about an object it lacks fetches that object alone, without the files of its tree.
    """
    if not committish:
        return "HEAD", "HEAD"
    if committish.startswith("-"):
        fail(f"'{committish}' is not a branch, tag or commit name")
    if committish.startswith("refs/"):
        run(["git", "fetch", "origin", f"+{committish}:{committish}"], cwd=repo, what="git fetch")
    for ref in (committish, f"refs/heads/{committish}", f"refs/tags/{committish}"):
        if ref.startswith("refs/") and has_ref(repo, ref):
            return commit_of(repo, ref), committish
    remote_branch = f"refs/remotes/origin/{committish}"
    if has_ref(repo, remote_branch):
        # checkout creates the local branch from the remote one
        return commit_of(repo, remote_branch), committish
    if HEX_NAME.fullmatch(committish):
        for name in git_output(repo, "rev-parse", f"--disambiguate={committish}").split():
            if git_output(repo, "cat-file", "-t", name) == "commit":
                return name, name
        if len(committish) == FULL_HASH_LENGTH:
            # A commit on no branch (e.g. a pull request's head): fetched with its files.
            git_asked(repo, "-c", "protocol.file.allow=never", "fetch", "origin", committish)
            commit = commit_of(repo, "FETCH_HEAD")
            if commit == committish:
                return commit, commit
    elif commit := commit_of(repo, committish):  # e.g. `main~1`
        return commit, commit
    fail(f"the repository has no branch, tag or commit '{committish}'")


HEX_NAME = re.compile(r"[0-9a-f]{4,40}")
FULL_HASH_LENGTH = 40


def git_asked(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """A git question whose failure is an answer, not an error."""
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        env=tool_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
    )


def has_ref(repo: Path, ref: str) -> bool:
    return git_asked(repo, "show-ref", "--verify", "--quiet", ref).returncode == 0


def git_output(repo: Path, *args: str) -> str:
    """What git printed, or "" when it failed."""
    asked = git_asked(repo, *args)
    return asked.stdout.strip() if asked.returncode == 0 else ""


def commit_of(repo: Path, revision: str) -> str:
    """The commit hash `revision` names in `repo`, or "" when it names none."""
    return git_output(
        repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{revision}^{{commit}}"
    )


def git_svn_clone(url: str, repo: Path) -> None:
    """Subversion through git-svn, so the rest of the task works on a git checkout."""
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in SVN_SCHEMES:
        fail(f"svn sources must be remote ({', '.join(SVN_SCHEMES)}), not '{scheme}:'")
    exec_path = subprocess.run(
        ["git", "--exec-path"], capture_output=True, text=True, env=tool_env(), check=False
    ).stdout.strip()
    if not exec_path or not Path(exec_path, "git-svn").exists():
        fail("svn sources need git-svn on the builder, which it does not have")
    run(["git", "svn", "clone", "--quiet", "--", url, str(repo)], what="git svn clone")


def git_clone(url: str, repo: Path) -> None:
    """Clone without checking out; servers that can filter leave out oversized files."""
    limit = int(PARAMS.get("max_file_bytes") or 0)
    arguments = ["git", "-c", "protocol.file.allow=never", "clone", "--quiet", "--no-checkout"]
    if limit:
        # A 2 GiB file of zeros is a few MB in git but costs minutes to inflate and hash;
        # with the filter the server never sends it and we can name it below.
        arguments.append(f"--filter=blob:limit={limit}")
    run([*arguments, "--", url, str(repo)], what=f"git clone {url}")


def refuse_oversized_blobs(repo: Path, committish: str) -> None:
    """Fail, naming the file, when the filtered clone left out a file of the checkout."""
    listing = run(
        ["git", "rev-list", "--objects", "--no-walk", "--missing=print", committish, "--"],
        cwd=repo,
        what=f"git rev-list {committish}",
    )
    missing = {line[1:].strip() for line in listing.splitlines() if line.startswith("?")}
    if not missing:
        return
    tree = run(["git", "ls-tree", "-r", "--full-tree", committish], cwd=repo, what="git ls-tree")
    for line in tree.splitlines():
        info, _, path = line.partition("\t")
        if info.split()[-1] in missing:
            fail(
                f"the repository file {path} is larger than the limit of "
                f"{PARAMS.get('max_file_bytes')} bytes"
            )


def scm_paths() -> tuple[Path, Path, Path]:
    """The checkout, its subdirectory, and the spec (from the subdirectory or the root)."""
    repo = SOURCES_DIR / PARAMS["repo"]
    subdirectory = inside(repo, PARAMS.get("subdirectory") or "", "subdirectory")
    spec_name = PARAMS.get("spec") or ""
    if spec_name:
        spec = inside(subdirectory, spec_name, "spec")
        if not spec.is_file():
            spec = inside(repo, spec_name, "spec")
        if not spec.is_file():
            fail(f"the spec file '{spec_name}' does not exist in the repository")
    else:
        specs = sorted(subdirectory.glob("*.spec"))
        if len(specs) != 1:
            where = PARAMS.get("subdirectory") or "the repository root"
            found = "no spec file" if not specs else f"{len(specs)} spec files"
            fail(f"{found} in {where}: name the spec to use")
        spec = specs[0]
    return repo, subdirectory, spec


def command_scm_srpm() -> None:
    repo, subdirectory, spec = scm_paths()
    method = PARAMS.get("method") or "rpkg"
    if method == "rpkg":
        inside_subdirectory = subdirectory == spec.parent or subdirectory in spec.parents
        rpkg_srpm(spec, spec.parent if inside_subdirectory else subdirectory)
    elif method in ("tito", "tito_test"):
        if not (repo / ".tito").is_dir() and not (repo / "rel-eng").is_dir():
            fail(f"{method} needs a repository set up for tito (`tito init` makes .tito/)")
        test = ["--test"] if method == "tito_test" else []
        OUT_DIR.mkdir(exist_ok=True)
        # tito reads the checkout's own tags with `git ls-remote ./.`, the file transport
        # the clone step refuses; the repository's code runs from here on anyway (tito.props
        # can name a builder class in it), so only the sandbox confines this step.
        try:
            run(
                ["tito", "build", *test, "--srpm", f"--output={OUT_DIR}"],
                cwd=subdirectory,
                env={"GIT_ALLOW_PROTOCOL": GIT_PROTOCOLS + ":file"},
                what=method,
            )
        except UserError as error:
            if "Unable to lookup latest package info" in str(error):
                fail(
                    f"{method} found no tagged release in .tito/packages: tag one with "
                    "`tito tag` and push the tags"
                )
            raise
    elif method == "make_srpm":
        makefile = repo / ".copr" / "Makefile"
        if not makefile.is_file():
            fail("make_srpm needs a .copr/Makefile in the repository")
        OUT_DIR.mkdir(exist_ok=True)
        run(
            ["make", "-f", str(makefile), "srpm", f"outdir={OUT_DIR}", f"spec={spec}"],
            cwd=subdirectory,
            what="make srpm",
        )
    else:
        fail(f"unknown SRPM build method '{method}'")


# --- spec file (URL or upload) --------------------------------------------------------------


def command_spec_srpm() -> None:
    spec = BUILD_DIR / "spec" / PARAMS["spec_name"]
    rpmbuild_bs(spec, spec.parent)


# --- DistGit ------------------------------------------------------------------------------


def command_distgit_sources() -> None:
    """Download what `sources` lists from the lookaside cache and verify every checksum."""
    repo = SOURCES_DIR / PARAMS["repo"]
    sources_file = repo / "sources"
    if not sources_file.is_file():
        print("No 'sources' file: nothing to download from the lookaside cache", flush=True)
    else:
        for entry in parse_sources(sources_file.read_text(errors="replace")):
            download_lookaside(repo, *entry)
    specs = sorted(repo.glob("*.spec"))
    if len(specs) != 1:
        fail(f"{len(specs)} spec files in the DistGit repository: expected one")
    rpmbuild_bs(specs[0], repo)


def parse_sources(text: str) -> list[tuple[str, str, str]]:
    """(hash type, file name, hash) from the new `SHA512 (name) = hash` or old `hash  name`."""
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        new = re.match(r"^(\w+) \((.+)\) = ([0-9a-fA-F]+)$", line)
        old = re.match(r"^([0-9a-fA-F]{32})\s+(\S+)$", line)
        if new:
            entries.append((new.group(1).lower(), new.group(2), new.group(3).lower()))
        elif old:
            entries.append(("md5", old.group(2), old.group(1).lower()))
        else:
            fail(f"cannot read the line '{line[:80]}' of the 'sources' file")
    return entries


def download_lookaside(repo: Path, hashtype: str, filename: str, expected: str) -> None:
    if hashtype not in HASH_NAMES:
        fail(f"unknown checksum type {hashtype} in 'sources'")
    if "/" in filename or filename.startswith("."):
        fail(f"'sources' names an unsafe file '{filename}'")
    url = PARAMS["lookaside_url"].format(
        name=PARAMS["package_name"],
        pkgname=PARAMS["package_name"],
        filename=urllib.parse.quote(filename),
        hashtype=hashtype,
        hash=expected,
        namespace=PARAMS.get("namespace") or "",
    )
    target = repo / filename
    run(
        ["curl", "--silent", "--show-error", "--fail", "--location", "--proto", "=http,https"]
        + ["--output", str(target), "--url", url],
        what=f"downloading {filename} from the lookaside cache",
    )
    digest = hashlib.new(hashtype)
    with open(target, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        fail(
            f"checksum mismatch for {filename}: 'sources' says {hashtype} {expected[:16]}…, "
            f"the lookaside cache sent {digest.hexdigest()[:16]}…"
        )
    print(f"{filename}: {hashtype} checksum verified", flush=True)


# --- custom script ------------------------------------------------------------------------


def command_custom() -> None:
    workdir = BUILD_DIR / "workdir"
    workdir.mkdir(exist_ok=True)
    script = BUILD_DIR / "script"
    interpreter = [] if script.read_bytes().startswith(b"#!") else ["/bin/bash"]
    script.chmod(0o755)
    check_builddeps(PARAMS.get("builddeps") or [])
    env = {
        "COPR_OWNER": PARAMS["owner"],
        "COPR_PROJECT": PARAMS["project"],
        "COPR_PACKAGE": PARAMS.get("package") or "",
        "COPR_RESULTDIR": PARAMS.get("resultdir") or ".",
        "COPR_CHROOT": PARAMS.get("chroot") or "",
    }
    arguments = []
    if PARAMS.get("hook_payload"):
        env["COPR_HOOK_PAYLOAD"] = PARAMS["hook_payload"]
        arguments = ["--hook-payload-file", PARAMS["hook_payload"]]
    run([*interpreter, str(script), *arguments], cwd=workdir, env=env, what="the custom script")
    resultdir = inside(workdir, PARAMS.get("resultdir") or "", "resultdir")
    srpms = sorted(resultdir.glob("*.src.rpm"))
    if srpms:
        OUT_DIR.mkdir(exist_ok=True)
        shutil.copyfile(srpms[0], OUT_DIR / srpms[0].name)
        return
    specs = sorted(resultdir.glob("*.spec"))
    if len(specs) != 1:
        fail(
            f"the custom script left {len(specs)} spec files in the result directory "
            f"'{PARAMS.get('resultdir') or '.'}': expected one spec (or an SRPM)"
        )
    rpmbuild_bs(specs[0], resultdir)


def check_builddeps(builddeps: list[str]) -> None:
    """The builder's own tools serve as build dependencies; missing ones fail clearly."""
    missing = [dep for dep in builddeps if not shutil.which(dep, path=tool_env()["PATH"])]
    if missing:
        fail(f"build dependencies not available on this builder: {', '.join(missing)}")


# --- PyPI ---------------------------------------------------------------------------------


# What fedora-license-data installs; pyp2spec --fedora-compliant reads it, else fetches it
# from gitlab.com, which the configured index being local does not make reachable.
FEDORA_LICENSES = "/usr/share/fedora-license-data/licenses/fedora-licenses.json"
PYP2RPM_WITH_INDEX = """
import sys
from pyp2rpm import settings
settings.PYPI_URL = sys.argv.pop(1) + "/pypi"
from pyp2rpm.bin import main
sys.argv[0] = "pyp2rpm"
main()
"""
PYP2SPEC_WITH_INDEX = """
import sys
from pyp2spec import pypi_loaders
from pyp2spec.pyp2spec import main
index = sys.argv.pop(1)
original = pypi_loaders._get_from_url
pypi_loaders._get_from_url = lambda url, *a, **k: original(
    url.replace("https://pypi.org", index, 1), *a, **k
)
sys.argv[0] = "pyp2spec"
main()
"""


def command_pypi() -> None:
    """pyp2spec or pyp2rpm writes the spec; rpmbuild -bs with our macros makes the SRPM."""
    name, version = PARAMS["name"], PARAMS.get("version") or ""
    workdir = BUILD_DIR / "pypi"
    workdir.mkdir(exist_ok=True)
    index = PARAMS.get("pypi_index") or ""
    env = {"PIP_INDEX_URL": index + "/simple"} if index else {}
    custom_index = bool(index) and index != "https://pypi.org"
    if PARAMS.get("generator") == "pyp2rpm":
        # -s -d: only write the spec there; pyp2rpm's own `rpmbuild -bs` (--srpm) would
        # lack the fallback %pypi_source and the index's %__pypi_url.
        options = [name, "-s", "-d", str(workdir), "-t", PARAMS.get("template") or "fedora"]
        for python_version in PARAMS.get("python_versions") or ["3"]:
            options += ["-b", str(python_version)]
        if version:
            options += ["-v", version]
        arguments = ["pyp2rpm", *options]
        if custom_index:
            arguments = ["python3", "-c", PYP2RPM_WITH_INDEX, index, *options]
        env["PATH"] = packager_path(workdir)
        run(arguments, cwd=workdir, env=env, what="pyp2rpm")
    else:
        # Without -o the spec is python-<name>.spec in workdir, as Copr's SRPMs hold it.
        options = [name, "--automode"]
        if Path(FEDORA_LICENSES).is_file():
            # Only warns about the license; without Fedora's data it would download it.
            options.append("--fedora-compliant")
        if version:
            options += ["-v", version]
        arguments = ["pyp2spec", *options]
        if custom_index:
            # pyp2spec asks https://pypi.org only; point its loader at the configured index.
            arguments = ["python3", "-c", PYP2SPEC_WITH_INDEX, index, *options]
        run(arguments, cwd=workdir, env=env, what="pyp2spec")
    specs = sorted(workdir.glob("*.spec"))
    if len(specs) != 1:
        fail(f"the spec generator wrote {len(specs)} spec files, expected one")
    rpmbuild_bs(specs[0], workdir)


def packager_path(workdir: Path) -> str:
    """PATH with an `rpmdev-packager` when the builder lacks rpmdevtools.

    pyp2rpm 3.3.10 asks rpmdev-packager for the changelog's packager; its fallback for a
    missing one crashes inside the template, leaving a %changelog line rpmbuild rejects.
    """
    path = tool_env()["PATH"]
    if shutil.which("rpmdev-packager", path=path):
        return path
    shim = workdir / "bin" / "rpmdev-packager"
    shim.parent.mkdir(exist_ok=True)
    shim.write_text('#!/bin/sh\necho "coprsite <builder@localhost>"\n')
    shim.chmod(0o755)
    return f"{shim.parent}:{path}"


# --- RubyGems -----------------------------------------------------------------------------


def command_rubygems() -> None:
    gem_name, server = PARAMS["gem_name"], PARAMS["rubygems_url"].rstrip("/")
    workdir = BUILD_DIR / "gem"
    workdir.mkdir(exist_ok=True)
    info_path = workdir / "info.json"
    run(
        ["curl", "--silent", "--show-error", "--fail", "--location", "--proto", "=http,https"]
        + ["--output", str(info_path), "--url", f"{server}/api/v1/gems/{gem_name}.json"],
        what=f"looking up the gem {gem_name}",
    )
    info = json.loads(info_path.read_text())
    version = str(info["version"])
    if not re.match(r"^[A-Za-z0-9._+-]+$", version):
        fail(f"the gem server reports an unusable version '{version}'")
    gem_file = workdir / f"{gem_name}-{version}.gem"
    run(
        ["curl", "--silent", "--show-error", "--fail", "--location", "--proto", "=http,https"]
        + ["--output", str(gem_file), "--url", f"{server}/gems/{gem_file.name}"],
        what=f"downloading {gem_file.name}",
    )
    if shutil.which("gem2rpm", path=tool_env()["PATH"]):
        spec_text = run(["gem2rpm", str(gem_file)], cwd=workdir, what="gem2rpm")
    else:
        spec_text = spec_from_gem_metadata(gem_name, version, info, gem_file.name)
    if not re.search(r"^License:\s*\S", spec_text, re.MULTILINE):
        fail(f"the gem {gem_name} declares no license, so no spec can be written for it")
    spec = workdir / f"rubygem-{gem_name}.spec"
    spec.write_text(spec_text)
    rpmbuild_bs(spec, workdir)


def spec_from_gem_metadata(name: str, version: str, info: dict, gem_file: str) -> str:
    """A plain spec that installs the gem with `gem install --local`, from its own metadata."""
    licenses = " and ".join(info.get("licenses") or [])
    summary = " ".join(str(info.get("info") or f"The {name} gem").split())[:200]
    homepage = info.get("homepage_uri") or f"{PARAMS['rubygems_url']}/gems/{name}"
    return f"""\
%global gem_name {name}
Name: rubygem-%{{gem_name}}
Version: {version}
Release: 1%{{?dist}}
Summary: {summary}
License: {licenses}
URL: {homepage}
Source0: {gem_file}
BuildArch: noarch

%description
{summary}

%prep

%build

%install
mkdir -p %{{buildroot}}%{{_datadir}}/gems
gem install --local --no-document --ignore-dependencies \\
    --install-dir %{{buildroot}}%{{_datadir}}/gems %{{SOURCE0}}

%files
%{{_datadir}}/gems
"""


COMMANDS = {
    "scm-fetch": command_scm_fetch,
    "scm-srpm": command_scm_srpm,
    "spec-srpm": command_spec_srpm,
    "distgit-sources": command_distgit_sources,
    "custom": command_custom,
    "pypi": command_pypi,
    "rubygems": command_rubygems,
}


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


def main(argv: list[str]) -> int:
    """`srpm_helper.py <command> <params JSON>`."""
    command, PARAMS_TEXT = argv[0], argv[1]
    PARAMS.update(json.loads(PARAMS_TEXT))
    try:
        write_copr_macros()
        COMMANDS[command]()
    except UserError as error:
        print(ERROR_MARK + " ".join(str(error).split()), flush=True)
        return ERROR_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
