"""Custom script: run the user's script in a work directory, take its SRPM or spec."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .common import BUILD_DIR, OUT_DIR, PARAMS, fail, inside, rpmbuild_bs, run, tool_env


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


COMMANDS = {"custom": command_custom}


# --- on the runner ------------------------------------------------------------------------


def prepare(helper: Any, source: dict[str, Any]) -> None:
    build_dir = helper.workspace.build_dir
    (build_dir / "script").write_text(str(source.get("script", "")))
    payload = source.get("hook_payload_path")
    sandbox_payload = ""
    if payload and Path(payload).is_file():
        shutil.copyfile(payload, build_dir / "hook_payload")
        sandbox_payload = "/build/hook_payload"
    builddeps = source.get("builddeps") or []
    if isinstance(builddeps, str):
        builddeps = builddeps.split()
    params = {
        "owner": helper.job["owner"],
        "project": helper.job["project"],
        "package": source.get("package") or "",
        "chroot": source.get("chroot") or "",
        "builddeps": builddeps,
        "resultdir": source.get("resultdir") or "",
        "hook_payload": sandbox_payload,
    }
    helper.run("custom", params)
