"""DistGit: clone the package's repository, fetch its lookaside sources, build the spec."""

from __future__ import annotations

import hashlib
import re
import urllib.parse
from pathlib import Path
from typing import Any

from .common import PARAMS, SOURCES_DIR, fail, rpmbuild_bs, run

HASH_NAMES = {"md5", "sha1", "sha224", "sha256", "sha384", "sha512"}


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


COMMANDS = {"distgit-sources": command_distgit_sources}


# --- on the runner ------------------------------------------------------------------------


def prepare(helper: Any, source: dict[str, Any]) -> None:
    repo = helper.fetch(
        clone_url=str(source.get("clone_url", "")),
        committish=str(source.get("committish") or ""),
    )
    params = {
        "repo": repo,
        "lookaside_url": source.get("lookaside_url", ""),
        "package_name": source.get("package_name", ""),
        "namespace": source.get("namespace", ""),
    }
    helper.run("distgit-sources", params)
