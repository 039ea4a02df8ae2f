"""Reading forge webhooks (GitHub, GitLab, Bitbucket, Pagure) and choosing what they rebuild."""

import fnmatch
import hashlib
import hmac
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath

from apps.packages.models import Package, SourceType

# Copr's tag rule: `<package>-<version>[-<release>]`, the version holding a digit.
TAG_VERSION = r"[-_][^-_]*\d[^-_]*([-_][^-_]+)?"


class WebhookRejected(Exception):
    """The request is not a webhook we act on; `status` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class Push:
    """What a forge reported, in the terms Copr matches packages with."""

    clone_urls: list[str]
    ref: str = ""
    tag: str = ""
    after: str = ""
    changed_files: list[str] = field(default_factory=list)
    submitted_by: str = ""

    @property
    def committish(self) -> str:
        """What the rebuild checks out: the tag, else the pushed commit."""
        return self.tag or self.after


def normalized_url(url: str) -> str:
    url = (url or "").strip().rstrip("/")
    return url.removesuffix(".git").rstrip("/").lower()


def github_signature_valid(secret: str, body: bytes, header: str) -> bool:
    """X-Hub-Signature-256: `sha256=` + HMAC-SHA256 of the body keyed with the secret."""
    expected = "sha256=" + hmac.new(str(secret).encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header or "")


def token_valid(secret: str, token: str) -> bool:
    return hmac.compare_digest(str(secret).encode(), (token or "").encode())


# --- payloads ------------------------------------------------------------------------------


def github_push(event: str, payload: dict) -> Push | None:
    """A push or tag from a GitHub payload; None for events that build nothing."""
    repository = payload.get("repository") or {}
    urls = [repository.get(key, "") for key in ("clone_url", "html_url", "git_url", "ssh_url")]
    sender = (payload.get("sender") or {}).get("html_url") or (payload.get("sender") or {}).get(
        "url", ""
    )
    ref = payload.get("ref") or ""
    if event == "create" and payload.get("ref_type") == "tag":
        return Push(clone_urls=urls, ref=ref, tag=ref, submitted_by=sender)
    if event != "push" or payload.get("deleted"):
        return None
    if ref.startswith("refs/tags/"):
        tag = ref.removeprefix("refs/tags/")
        return Push(clone_urls=urls, ref=ref, tag=tag, submitted_by=sender)
    return Push(
        clone_urls=urls,
        ref=ref,
        after=payload.get("after") or "",
        changed_files=changed_files(payload.get("commits") or []),
        submitted_by=sender,
    )


def gitlab_push(payload: dict) -> Push | None:
    project = payload.get("project") or {}
    urls = [project.get("git_http_url", ""), project.get("web_url", "")]
    urls.append(project.get("git_ssh_url", ""))
    user = payload.get("user_username") or payload.get("user_name") or ""
    submitted_by = f"gitlab.com:{user}" if user else ""
    kind = payload.get("object_kind")
    ref = payload.get("ref") or ""
    if kind == "tag_push":
        if not payload.get("after") or set(payload["after"]) == {"0"}:
            return None  # a deleted tag
        return Push(clone_urls=urls, ref=ref, tag=ref.rsplit("/", 1)[-1], submitted_by=submitted_by)
    if kind != "push":
        return None
    return Push(
        clone_urls=urls,
        ref=ref,
        after=payload.get("after") or "",
        changed_files=changed_files(payload.get("commits") or []),
        submitted_by=submitted_by,
    )


def bitbucket_push(payload: dict) -> Push | None:
    """Bitbucket sends no file lists: a branch push matches on URL and branch alone."""
    repository = payload.get("repository") or {}
    url = ((repository.get("links") or {}).get("html") or {}).get("href", "")
    changes = (payload.get("push") or {}).get("changes") or []
    new = (changes[0].get("new") if changes else None) or {}
    if not new:
        return None
    actor = ((payload.get("actor") or {}).get("links") or {}).get("html", {}).get("href", "")
    name = new.get("name") or ""
    commit = (new.get("target") or {}).get("hash") or ""
    if new.get("type") == "tag":
        return Push(clone_urls=[url], ref=f"refs/tags/{name}", tag=name, submitted_by=actor)
    return Push(clone_urls=[url], ref=f"refs/heads/{name}", after=commit, submitted_by=actor)


def pagure_push(payload: dict) -> Push | None:
    """Pagure's web-hook notification: `{"topic": …, "msg": {…}}` of git.receive / tag events."""
    topic = payload.get("topic") or ""
    message = payload.get("msg") or {}
    repository = message.get("repo") or {}
    urls = [repository.get("full_url", ""), repository.get("url", "")]
    agent = message.get("agent") or ""
    if topic.endswith("git.tag.creation"):
        tag = message.get("tag") or ""
        return Push(clone_urls=urls, ref=f"refs/tags/{tag}", tag=tag, submitted_by=agent)
    if topic.endswith("git.receive"):
        branch = message.get("branch") or ""
        commit = message.get("end_commit") or message.get("rev") or ""
        return Push(clone_urls=urls, ref=f"refs/heads/{branch}", after=commit, submitted_by=agent)
    return None


def changed_files(commits: list) -> list[str]:
    files: list[str] = []
    for commit in commits:
        if isinstance(commit, dict):
            for key in ("added", "modified", "removed"):
                files += [str(path) for path in commit.get(key) or []]
    return files


# --- matching (Copr's rules, FE/logic/packages_logic.py) -------------------------------------


def packages_to_rebuild(project, push: Push, package_name: str | None = None) -> list[Package]:
    """The project's auto-rebuilt SCM packages at the pushed URL that the push touches."""
    urls = {normalized_url(url) for url in push.clone_urls if url}
    candidates = Package.objects.filter(
        project=project, source_type=SourceType.SCM, webhook_rebuild=True
    ).order_by("name")
    return [
        package
        for package in candidates
        if normalized_url(package.source_json.get("clone_url", "")) in urls
        and push_touches(package, push, package_name)
    ]


def push_touches(package: Package, push: Push, package_name: str | None) -> bool:
    if push.tag:
        if package_name:
            return package_name == package.name
        return re.fullmatch(re.escape(package.name) + TAG_VERSION, push.tag) is not None
    if package_name and package_name != package.name:
        return False
    committish = package.source_json.get("committish") or ""
    if committish and not push.ref.endswith(committish):
        return False
    if not push.changed_files:
        return True
    return any(path_in_subdirectory(path, package) for path in push.changed_files)


def path_in_subdirectory(path: str, package: Package) -> bool:
    subdirectory = (package.source_json.get("subdirectory") or "").strip("/")
    if not subdirectory or subdirectory == ".":
        return True
    parts = PurePosixPath(subdirectory).parts
    return PurePosixPath(path).parts[: len(parts)] == parts or fnmatch.fnmatch(
        path, f"{subdirectory}/*"
    )
