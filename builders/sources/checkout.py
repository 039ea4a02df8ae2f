"""Cloning a git or Subversion repository in the sandbox: the SCM and DistGit methods share it."""

from __future__ import annotations

import re
import subprocess
import urllib.parse
from pathlib import Path

from .common import PARAMS, SOURCES_DIR, fail, inside, run, tool_env

# git-svn reaches these itself (not through git's transports); file:// would be the builder.
SVN_SCHEMES = ("http", "https", "svn", "svn+ssh")


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
    # The portal shows which commit the build came from (a branch moves on).
    print(f"coprsite-commit: {commit_of(repo, 'HEAD')}", flush=True)


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


COMMANDS = {"scm-fetch": command_scm_fetch}
