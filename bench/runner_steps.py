"""Where one trivial build's time goes inside the builder: `builders.runner.run_job` timed
as a whole and step by step (workspace, sized disk, cgroup, the sandboxed rpmbuild, copying
results out), with the limits the service gives every job (the BUILD_LIMIT_* defaults).

Needs root for the sized disk and the cgroup, as the builder does. Each step's time is the
median over the jobs; run_job's too. `--default-cpu-weight` gives the job's cgroup the
kernel's default CPU weight instead of a tenth of it: on a busy machine the weight, not the
runner, decides how long a job waits for the CPU, and this takes it out of the figures.

    .venv/bin/python bench/runner_steps.py [--jobs 9] [--default-cpu-weight]
"""

import argparse
import functools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builders import limits, rpmbuild, runner, sandbox  # noqa: E402
from builders.protocol import KIND_RPM, STATE_SUCCEEDED, JobSpec  # noqa: E402
from tests.builders.srpm_factory import make_srpm  # noqa: E402

# The BUILD_LIMIT_* defaults of coprsite/settings.py on a 2-CPU host.
LIMITS = {"processes": 1024, "memory_mib": 4096, "cpu_seconds": 36000, "disk_mib": 10240}
LIMITS["cpu_percent"] = max(50, 100 * ((os.cpu_count() or 1) - 1))
STEPS = (
    (sandbox.Workspace, "create"),
    (sandbox.Workspace, "apply_limits"),  # the sized disk: copy or mkfs, mount
    (sandbox.Workspace, "cleanup"),  # unmount, remove
    (sandbox, "open_cgroup"),
    (sandbox, "run_streamed"),  # bwrap and rpmbuild
    (runner, "read_srpm_header"),
    (runner, "keep_spec"),
    (runner, "_stage_packages"),  # copying the RPMs out, reading their headers
    (runner, "_finish"),
    (rpmbuild, "write_configs"),
    (rpmbuild, "write_root_log"),
)
seconds: dict[str, list[float]] = defaultdict(list)


def timed(owner, name: str) -> None:
    function = getattr(owner, name)
    label = f"{getattr(owner, '__name__', '')}.{name}".removeprefix("builders.")

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        started = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            seconds[label].append(time.monotonic() - started)

    setattr(owner, name, wrapper)


def time_tools() -> None:
    """Every tool the runner starts itself (mkfs, cp, mount, umount, rpm), by its name."""
    run = subprocess.run

    def wrapper(argv, *args, **kwargs):
        started = time.monotonic()
        try:
            return run(argv, *args, **kwargs)
        finally:
            seconds[f"tool {Path(str(argv[0])).name}"].append(time.monotonic() - started)

    subprocess.run = wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=9)
    parser.add_argument("--default-cpu-weight", action="store_true")
    args = parser.parse_args()
    if args.default_cpu_weight:
        limits.CPU_SHARES_V1, limits.CPU_WEIGHT_V2 = 1024, 100
    for owner, name in STEPS:
        timed(owner, name)
    work = Path(tempfile.mkdtemp(prefix="coprsite-runner-steps-"))
    work.chmod(0o755)  # the build uid binds its workspace from below here
    srpm = make_srpm(work, name="trivial")
    time_tools()
    totals = [run_one(srpm, work, index) for index in range(args.jobs)]
    # Workspaces are removed after run_job returns (the runner before 2026-12-07 had no
    # such wait: the script also times that code, for comparison).
    getattr(runner, "workspaces_removed", lambda: None)()
    print(f"run_job {statistics.median(totals):.3f} s (median of {args.jobs}: "
          f"{', '.join(f'{total:.2f}' for total in totals)})")  # fmt: skip
    for label, values in sorted(seconds.items(), key=lambda item: -statistics.median(item[1])):
        print(f"    {label:<32} {statistics.median(values):6.3f} s  ({len(values)} calls)")


def run_one(srpm: Path, work: Path, index: int) -> float:
    spec = JobSpec(
        task_id=f"steps-{index}", kind=KIND_RPM, build_id=index, owner="bench", project="steps",
        result_dir=str(work / f"result-{index}"), source={"srpm_path": str(srpm)},
        chroot="fedora-43-x86_64", arch="x86_64", macros={"dist": ".fc43", "fedora": "43"},
        workspaces_root=str(work), workspace_name=f"steps-{index}", limits=LIMITS,
    )  # fmt: skip
    started = time.monotonic()
    result = runner.run_job(spec)
    if result.state != STATE_SUCCEEDED:
        sys.exit(f"the job failed: {result.failure_reason}")
    return time.monotonic() - started


if __name__ == "__main__":
    main()
