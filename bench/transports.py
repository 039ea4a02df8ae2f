"""Transport benchmark: the overhead of each builder transport over raw `rpmbuild`, in one run.

For one trivial SRPM it prints the median wall time of
1. `rpmbuild --rebuild` run by hand,
2. the local transport (the runner and its sandbox in this process),
3. the SSH transport to a host in a network namespace of this machine (its own sshd; the
   first job installs the runner copy, later ones reuse it: both figures are printed),
and each transport's overhead per build against raw rpmbuild. Needs root (namespaces, sshd).

    .venv/bin/python bench/transports.py [--runs 5]
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from builders.protocol import KIND_RPM, JobSpec  # noqa: E402  (after the path is set)
from builders.transports.local import LocalTransport  # noqa: E402
from builders.transports.ssh import SshTransport  # noqa: E402
from tests.builders.srpm_factory import make_srpm  # noqa: E402
from tests.builders.ssh_helpers import create_host, remove_host  # noqa: E402


def raw_rpmbuild(srpm: Path, work: Path) -> float:
    top = Path(tempfile.mkdtemp(dir=work))
    started = time.monotonic()
    subprocess.run(
        ["rpmbuild", "--rebuild", "--define", f"_topdir {top}", str(srpm)],
        check=True,
        capture_output=True,
    )
    return time.monotonic() - started


def job(srpm: Path, work: Path, index: int) -> JobSpec:
    result_dir = work / f"results-{index}"
    return JobSpec(
        task_id=f"bench-{index}",
        kind=KIND_RPM,
        build_id=index,
        owner="bench",
        project="bench",
        result_dir=str(result_dir),
        source={"srpm_path": str(srpm)},
        chroot="fedora-43-x86_64",
        arch="x86_64",
        timeout=600,
    )


def timed(transport, spec: JobSpec) -> float:
    started = time.monotonic()
    result = transport.run(spec, should_cancel=lambda: False)
    elapsed = time.monotonic() - started
    if result.state != "succeeded":
        raise SystemExit(f"{type(transport).__name__}: {result.failure_reason}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    work = Path(tempfile.mkdtemp(prefix="coprsite-bench-transports-"))
    host = None
    try:
        srpm = make_srpm(work, name="hello", auto_req_prov=False)
        host = create_host(work / "host", "bench")
        ssh = SshTransport(host.ssh_host())
        raw = [raw_rpmbuild(srpm, work) for _ in range(runs)]
        local = [timed(LocalTransport(), job(srpm, work, i)) for i in range(runs)]
        first_ssh = timed(ssh, job(srpm, work, 1000))
        later_ssh = [timed(ssh, job(srpm, work, 1001 + i)) for i in range(runs)]
    finally:
        if host is not None:
            remove_host(host)
        shutil.rmtree(work, ignore_errors=True)
    base = statistics.median(raw)
    print(f"raw rpmbuild --rebuild           {base:6.2f} s (median of {runs})")
    for name, figure in [
        ("local transport", statistics.median(local)),
        ("ssh transport, runner installed", first_ssh),
        ("ssh transport, runner present", statistics.median(later_ssh)),
    ]:
        print(f"{name:32s} {figure:6.2f} s   overhead {figure - base:+6.2f} s per build")


if __name__ == "__main__":
    main()
