"""Run one job (source task or RPM task) and leave its results as Copr lays them out."""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlsplit

from builders.debug_shell import keep_for_debugging
from builders.failures import BuildCanceled, BuildFailure, shorten
from builders.fetch import DOWNLOAD_NAME, download
from builders.limits import ResourceLimits
from builders.livelog import LOG_NAME, LiveLog
from builders.protocol import (
    KIND_RPM,
    KIND_SRPM,
    STATE_CANCELED,
    STATE_FAILED,
    STATE_SUCCEEDED,
    JobResult,
    JobSpec,
)
from builders.providers import build_srpm, makes_srpm
from builders.results import (
    RESULTS_JSON,
    SUCCESS_FILE,
    UnsafeOutput,
    clear_previous_attempt,
    copy_out,
    mark_success,
    publish,
    safe_file_name,
    write_json,
)
from builders.rpmbuild import (
    OutputPath,
    check_arch,
    mock_available,
    mock_rebuild,
    rpmbuild_rebuild,
)
from builders.sandbox import Watchdog, Workspace
from builders.srpm import (
    BadRpm,
    NotAnSrpm,
    read_rpm_nevra,
    read_srpm_header,
    read_srpm_spec,
    srpm_build_requires,
)


def _never() -> bool:
    return False


def run_job(spec: JobSpec, *, should_cancel: Callable[[], bool] = _never) -> JobResult:
    """Run `spec`, write logs and results into `spec.result_dir`, return the outcome.

    Never raises for build problems: those come back as a failed result with a reason
    (only an unusable `result_dir` itself raises OSError). RPMs reach `result_dir` only
    when everything succeeded.
    """
    result_dir = Path(spec.result_dir)
    result_dir.mkdir(parents=True, exist_ok=True)
    clear_previous_attempt(result_dir, keep=_input_paths(spec))
    activity = "source task" if spec.kind == KIND_SRPM else "build"
    watchdog = Watchdog(should_cancel, spec.timeout, activity)
    with LiveLog(result_dir / LOG_NAME) as log:
        log.info(f"Task {spec.task_id} ({spec.kind}) of {spec.owner}/{spec.project}")
        buildroot = buildroot_line(spec)
        if buildroot:
            log.info(buildroot)
        result = replace(_run_in_workspace(spec, result_dir, log, watchdog), buildroot=buildroot)
        ending = f": {result.failure_reason}" if result.failure_reason else ""
        log.info(f"Finished: {result.state}{ending}")
    return result


HOST_BUILDROOT = "host buildroot: BuildRequires were not installed"


def buildroot_line(spec: JobSpec) -> str:
    """Where an RPM job builds, said once in the live log, results.json and the build page:
    nobody should take the host's rpmbuild for a Fedora buildroot."""
    if spec.kind != KIND_RPM:
        return ""
    if mock_available(spec):
        return f"mock: {spec.mock_config}"
    return (
        f"{HOST_BUILDROOT}: rpmbuild ran on the builder's own system, not in a {spec.chroot} chroot"
    )


def runs_in_sandbox(spec: JobSpec) -> bool:
    """Whether the job runs anything in the sandbox, and so needs its limits applied.

    The source task of an uploaded SRPM only copies the file (whose size the portal
    limited) and reads its header here: a sized workspace filesystem made and mounted for
    it (mkfs, mount, umount) would hold nothing, yet cost a burst of uploads a fifth of a
    second each.
    """
    if spec.kind != KIND_SRPM:
        return True
    return spec.source.get("type") != "upload" or makes_srpm(spec.source)


def _input_paths(spec: JobSpec) -> list[Path]:
    paths = [spec.source.get("path"), spec.source.get("srpm_path")]
    return [Path(path) for path in paths if isinstance(path, str)]


def _run_in_workspace(
    spec: JobSpec, result_dir: Path, log: LiveLog, watchdog: Watchdog
) -> JobResult:
    workspace: Workspace | None = None
    try:
        workspace = Workspace.create(base=spec.workspaces_root, name=spec.workspace_name)
        if runs_in_sandbox(spec):
            workspace.apply_limits(ResourceLimits.from_dict(spec.limits))
        if spec.kind == KIND_SRPM:
            return _source_task(spec, workspace, result_dir, log, watchdog)
        if spec.kind == KIND_RPM:
            return _rpm_task(spec, workspace, result_dir, log, watchdog)
        raise BuildFailure(f"unknown job kind {spec.kind!r}")
    except BuildCanceled as stop:
        return JobResult(state=STATE_CANCELED, failure_reason=stop.reason)
    except BuildFailure as failure:
        return JobResult(state=STATE_FAILED, failure_reason=shorten(failure.reason))
    except Exception as exc:  # a bug or a broken builder host; still one line for the user
        log.write(traceback.format_exc().encode())
        reason = shorten(f"builder error: {type(exc).__name__}: {exc}")
        return JobResult(state=STATE_FAILED, failure_reason=reason)
    finally:
        if workspace is not None and spec.keep_workspace:
            keep_for_debugging(spec, workspace)
        elif workspace is not None:
            _remove_workspace_later(workspace)


def _remove_workspace_later(workspace: Workspace) -> None:
    """Remove the workspace once the job's result is handed back: unmounting its disk and
    deleting its files took a tenth of a second of a trivial build, which the next job on
    the slot need not wait for.

    Not a daemon thread: the interpreter waits for it before it exits (`python -m
    builders.runner` over SSH too). A process killed before leaves the workspace to the
    sweeps (apps.builds.workspaces, builders.sweep), as a killed job always has.
    """
    thread = threading.Thread(
        target=_remove_workspace, args=(workspace,), name=f"remove {workspace.root.name}"
    )
    with _removals_lock:
        _removals[:] = [pending for pending in _removals if pending.is_alive()] + [thread]
    thread.start()


_removals: list[threading.Thread] = []
_removals_lock = threading.Lock()


def workspaces_removed(timeout: float | None = None) -> None:
    """Wait until the workspaces of the jobs that have ended are gone."""
    with _removals_lock:
        pending = list(_removals)
    for thread in pending:
        thread.join(timeout)


def _remove_workspace(workspace: Workspace) -> None:
    try:
        workspace.cleanup()
    except OSError as exc:
        # The job's outcome stands (its log is closed); the operator cleans up by hand.
        print(f"Could not remove the workspace {workspace.root}: {exc}", file=sys.stderr)


def _finish(result_dir: Path, staged: list[Path], results: dict[str, Any]) -> list[str]:
    """Publish the files, results.json and `success`: all of them, or on error none."""
    files = publish(staged, result_dir)
    try:
        write_json(result_dir / RESULTS_JSON, results)
        mark_success(result_dir)
    except BaseException:
        for name in [*files, RESULTS_JSON, SUCCESS_FILE]:
            (result_dir / name).unlink(missing_ok=True)
        raise
    return files


def _stage_srpm(
    spec: JobSpec, workspace: Workspace, log: LiveLog, watchdog: Watchdog
) -> tuple[Path, str]:
    """Bring the source task's SRPM into the (runner-only) staging directory; with the commit
    it was made from, for sources checked out of a repository."""
    source_type = spec.source.get("type")
    if makes_srpm(spec.source):
        job = {"owner": spec.owner, "project": spec.project, "build_id": spec.build_id}
        return build_srpm(
            spec.source,
            job,
            workspace,
            max_file_bytes=spec.max_download_bytes,
            log=log,
            watchdog=watchdog,
        )
    # Keep the user's file name for messages ("notes.txt is not an RPM file").
    if source_type == "link":
        original = Path(urlsplit(str(spec.source.get("url", ""))).path).name
    else:
        original = Path(str(spec.source.get("path", ""))).name
    staged = workspace.staging / safe_file_name(original, "source.src.rpm")
    if source_type == "link":
        download(
            spec.source["url"],
            workspace,
            max_bytes=spec.max_download_bytes,
            log=log,
            watchdog=watchdog,
        )
        try:
            copy_out(workspace.root, ("build", DOWNLOAD_NAME), staged)
        except (UnsafeOutput, FileNotFoundError) as exc:
            raise BuildFailure(f"source download failed: no file was written ({exc})") from exc
    elif source_type == "upload":
        try:
            shutil.copyfile(spec.source["path"], staged)
        except OSError as exc:
            raise BuildFailure(f"the uploaded file cannot be read: {exc.strerror}") from exc
    else:
        raise BuildFailure(f"unsupported source type {source_type!r}")
    return staged, ""


def _source_task(
    spec: JobSpec, workspace: Workspace, result_dir: Path, log: LiveLog, watchdog: Watchdog
) -> JobResult:
    staged, commit = _stage_srpm(spec, workspace, log, watchdog)
    try:
        info = read_srpm_header(staged)
    except NotAnSrpm as exc:
        raise BuildFailure(f"not a source RPM: {exc}") from exc
    # Named after its header, not after the URL: the name is then safe and predictable.
    filename = f"{info['name']}-{info['version']}-{info['release']}.src.rpm"
    final = staged.rename(workspace.staging / filename)
    log.info(f"Source RPM {filename}: {_arch_tags(info)}")
    keep_spec(final, result_dir)
    watchdog.check()
    files = _finish(result_dir, [final], _srpm_results_json(info))
    srpm = {**info, "filename": filename, **({"commit": commit} if commit else {})}
    return JobResult(state=STATE_SUCCEEDED, srpm=srpm, files=files)


def keep_spec(srpm: Path, result_dir: Path) -> None:
    """The SRPM's spec file beside the results, as Copr keeps it (read, never run)."""
    found = read_srpm_spec(srpm)
    if found is not None:
        name, text = found
        (result_dir / safe_file_name(name, "package.spec")).write_bytes(text)


def _arch_tags(info: dict[str, Any]) -> dict[str, list[str]]:
    return {key: info[key] for key in ("exclusivearch", "excludearch", "buildarch")}


def _srpm_results_json(info: dict[str, Any]) -> dict[str, Any]:
    # Copr keys the arch tags by target distribution because it re-parses the spec per
    # target; here they come from the SRPM header once, so one entry holds for all.
    return {
        **{key: info[key] for key in ("name", "epoch", "version", "release")},
        "architecture_specific_tags": {"srpm-header": _arch_tags(info)},
    }


def _rpm_task(
    spec: JobSpec, workspace: Workspace, result_dir: Path, log: LiveLog, watchdog: Watchdog
) -> JobResult:
    source = Path(spec.source["srpm_path"])
    try:
        info = read_srpm_header(source)
        build_requires = srpm_build_requires(source)
    except NotAnSrpm as exc:
        raise BuildFailure(f"not a source RPM: {exc}") from exc
    log.info(f"Building {info['name']}-{info['version']}-{info['release']} for {spec.chroot}")
    srpm_name = safe_file_name(source.name, "source.src.rpm")
    shutil.copyfile(source, workspace.build_dir / srpm_name)
    workspace.hand_over()
    keep_spec(source, result_dir)
    if mock_available(spec):
        outputs = mock_rebuild(
            spec, workspace, srpm_name, log=log, watchdog=watchdog, result_dir=result_dir
        )
    else:
        check_arch(spec.arch)
        outputs = rpmbuild_rebuild(
            spec,
            workspace,
            srpm_name,
            build_requires,
            log=log,
            watchdog=watchdog,
            result_dir=result_dir,
        )
    staged, packages = _stage_packages(workspace, outputs)
    if not any(package["arch"] != "src" for package in packages):
        raise BuildFailure("the build wrote no binary RPMs")
    watchdog.check()
    files = _finish(result_dir, staged, {"packages": packages, "buildroot": buildroot_line(spec)})
    log.info("Wrote " + ", ".join(files))
    return JobResult(state=STATE_SUCCEEDED, packages=packages, files=files)


def _stage_packages(
    workspace: Workspace, outputs: list[OutputPath]
) -> tuple[list[Path], list[dict[str, Any]]]:
    """Copy built RPMs out of the sandbox's reach and read their headers there."""
    staged: list[Path] = []
    packages: list[dict[str, Any]] = []
    for parts in outputs:
        target = workspace.staging / parts[-1]
        try:
            copy_out(workspace.root, parts, target)
            packages.append(read_rpm_nevra(target))
        except (UnsafeOutput, BadRpm) as exc:
            raise BuildFailure(f"the build wrote an unusable package: {exc}") from exc
        staged.append(target)
    return staged, packages


def _cancel_on_signals() -> Callable[[], bool]:
    """SIGTERM / SIGINT ask the job to stop (e.g. the portal closing the SSH session)."""
    requested = threading.Event()

    def request(_signum: int, _frame: FrameType | None) -> None:
        requested.set()

    signal.signal(signal.SIGTERM, request)
    signal.signal(signal.SIGINT, request)
    return requested.is_set


def main(argv: list[str] | None = None) -> int:
    """`python -m builders.runner job.json`: run the job, print the result JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("job", help="job spec JSON file, or - for standard input")
    args = parser.parse_args(argv)
    text = sys.stdin.read() if args.job == "-" else Path(args.job).read_text()
    result = run_job(JobSpec.from_json(text), should_cancel=_cancel_on_signals())
    print(result.to_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
