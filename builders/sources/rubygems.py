"""RubyGems: download the gem, write its spec (gem2rpm or its metadata), make the SRPM."""

from __future__ import annotations

import json
import re
import shutil
from typing import Any

from .common import BUILD_DIR, PARAMS, fail, rpmbuild_bs, run, tool_env


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


COMMANDS = {"rubygems": command_rubygems}


# --- on the runner ------------------------------------------------------------------------

RUBYGEMS_URL = "https://rubygems.org"


def prepare(helper: Any, source: dict[str, Any]) -> None:
    params = {
        "gem_name": source.get("gem_name", ""),
        "rubygems_url": source.get("rubygems_url") or RUBYGEMS_URL,
    }
    helper.run("rubygems", params)
