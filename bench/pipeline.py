"""Pipeline benchmark: coprsite against the raw tools doing the same steps, in one run.

Every by-hand baseline is checked to have done its work: each build's RPMs exist and
`rpm -K` finds them signed with the baseline's key (else the script stops).

Prints (targets: at most 1.5 and 1.2):
1. submit -> installable for one trivial SRPM, divided by `rpmbuild --rebuild` + `rpmsign`
   + `createrepo_c` run by hand, with where the service's time goes, stage by stage;
2. wall time for N trivial builds submitted at once, with the number of createrepo_c runs
   it took, divided by the raw tools doing all of that work by hand (rebuilds on as many
   parallel rpmbuilds as there are slots, then one rpmsign and one createrepo_c run); then,
   as second lines, divided by the same work through the build sandbox alone
   (`builders.runner.run_job`, the walls every build must have, as many at a time as there
   are slots, then one rpmsign of the RPMs and SRPMs, which the service signs both of, and
   one createrepo_c run) and by the ideal (sum of raw rpmbuild times / builder slots);
3. the same for builds whose %build does a couple of seconds of work.

It runs the real service in this process (embedded broker and worker, a fresh SQLite
database and results tree under a temporary directory) and submits through the service
layer, the same function the APIs call.

    .venv/bin/python bench/pipeline.py [--builds 200] [--busy-builds 20] [--single-runs 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="coprsite-bench-"))
os.environ.update({"VAR_DIR": str(WORK / "var"), "DJANGO_SETTINGS_MODULE": "coprsite.settings"})
os.environ.setdefault("LOG_LEVEL", "WARNING")  # a line per build would bury the figures
for name in ("RESULTS_ROOT", "KEYS_ROOT", "UPLOADS_ROOT"):
    os.environ.pop(name, None)

import django  # noqa: E402  (the environment above must be set first)

django.setup()

from django.conf import settings  # noqa: E402
from django.core.files.uploadedfile import SimpleUploadedFile  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Sum  # noqa: E402

from apps.accounts.services import user_create_or_update  # noqa: E402
from apps.builds.execution import default_job_limits  # noqa: E402
from apps.builds.models import FINAL_STATES, Build, BuildTask  # noqa: E402
from apps.builds.services import BuildOptions, build_submit  # noqa: E402
from apps.builds.workspaces import workspaces_root  # noqa: E402
from apps.core.embedded import start_embedded_worker  # noqa: E402
from apps.repos import gpg  # noqa: E402
from apps.repos.models import Repository  # noqa: E402
from apps.repos.services import project_key_ensure  # noqa: E402
from apps.workflows.projects import project_create  # noqa: E402
from builders.protocol import KIND_RPM, STATE_SUCCEEDED, JobSpec  # noqa: E402
from builders.runner import run_job  # noqa: E402
from tests.builders.srpm_factory import make_srpm  # noqa: E402

CHROOT = "fedora-43-x86_64"
CHROOT_MACROS = {"dist": ".fc43", "fedora": "43"}
SINGLE_RUNS = 5
# rpmbuild's time varies by a tenth from run to run; the ideal rests on it.
RAW_RUNS = 7
# About two seconds of work for one CPU in %build, like compiling a small program. One
# process (a pipeline would use both cores and flatter the raw baseline), run by `sh -c` so
# rpmbuild's shell trace stays one line.
BUSY_LOOP = "sh -c 'i=0; while [ $i -lt 1000000 ]; do i=$((i+1)); done'"


def raw_rebuild(srpm: Path, topdir: Path) -> float:
    """`rpmbuild --rebuild` with the chroot's macros, as a packager would run it by hand."""
    started = time.monotonic()
    done = subprocess.run(
        ["rpmbuild", "--rebuild", "--nodeps", "--define", f"_topdir {topdir}",
         *(arg for name, value in CHROOT_MACROS.items() for arg in ("--define", f"{name} {value}")),
         str(srpm)],
        capture_output=True, text=True,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"raw rpmbuild failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return time.monotonic() - started


def raw_keys() -> Path:
    keys = WORK / "raw-keys"
    gpg.generate_project_key(keys_root=keys, owner="raw", project="raw", sign_domain="bench")
    return keys


def check_baseline(what: str, rpms: list[Path], *, builds: int, keys: Path) -> None:
    """Stop unless the by-hand work really happened: at least one RPM per build, each one
    signed with the baseline's key (`rpm -K` against an rpmdb holding only that key)."""
    if len(rpms) < builds:
        sys.exit(f"{what}: {len(rpms)} RPMs for {builds} builds; the baseline did not build")
    dbpath = Path(tempfile.mkdtemp(prefix="rpmdb-", dir=WORK))
    pubkey = WORK / "raw-pubkey.asc"
    pubkey.write_text(gpg.export_public_key(keys_root=keys, owner="raw", project="raw"))
    subprocess.run(["rpm", "--dbpath", str(dbpath), "--import", str(pubkey)], check=True)
    for chunk in range(0, len(rpms), 500):
        checked = subprocess.run(
            ["rpm", "--dbpath", str(dbpath), "-K", *map(str, rpms[chunk : chunk + 500])],
            capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"},
        )  # fmt: skip
        lines = checked.stdout.splitlines()
        if checked.returncode != 0 or not all(line.endswith("signatures OK") for line in lines):
            sys.exit(f"{what}: not every RPM is signed:\n{checked.stdout[-2000:]}")


def raw_tools_steps(srpm: Path, attempt: int) -> list[float]:
    """rpmbuild --rebuild, rpmsign with a project key, createrepo_c: the steps by hand,
    each timed; the RPMs are checked afterwards (not timed)."""
    top = WORK / f"raw-{attempt}"
    keys = raw_keys()
    marks = [time.monotonic()]
    raw_rebuild(srpm, top)
    marks.append(time.monotonic())
    rpms = list((top / "RPMS").rglob("*.rpm"))
    gpg.sign_rpms(keys_root=keys, owner="raw", project="raw", rpm_paths=rpms)
    marks.append(time.monotonic())
    subprocess.run(["createrepo_c", "--no-database", str(top / "RPMS")], check=True,
                   capture_output=True)  # fmt: skip
    marks.append(time.monotonic())
    check_baseline("(1) by hand", rpms, builds=1, keys=keys)
    return [end - start for start, end in pairwise(marks)]


# Where one build's time goes: each stage ends when the first of its conditions is seen
# (one query every 10 ms on the build's two tasks).
STAGES = (
    ("source task picked up", "the upload's source task starts"),
    ("source task (files the SRPM)", "the source task ends"),
    ("waiting for a builder slot", "the RPM task starts"),
    ("building (sandbox, rpmbuild)", "the builder hands the RPMs back"),
    ("signing", "the RPMs are signed and wait for createrepo_c"),
    ("publishing (createrepo_c)", "the build has succeeded"),
)


def submit_to_installable(user, project, srpm: Path) -> tuple[float, list[float]]:
    """Seconds from submit to installable, and the seconds of each of STAGES."""
    started = time.monotonic()
    build = submit(user, project, srpm)
    marks = watch_stages(build.pk, started)
    return marks[-1] - started, [end - start for start, end in pairwise([started, *marks])]


def watch_stages(build_id: int, started: float, timeout: float = 600) -> list[float]:
    seen: list[float] = []
    deadline = started + timeout
    while len(seen) < len(STAGES):
        tasks = {
            task.chroot_id is None: task for task in BuildTask.objects.filter(build_id=build_id)
        }
        source, rpm = tasks.get(True), tasks.get(False)
        reached = [
            source is not None and source.started_on is not None,
            source is not None and source.state in FINAL_STATES,
            rpm is not None and rpm.started_on is not None,
            rpm is not None and rpm.started_on is not None and rpm.builder_id is None,
            rpm is not None and (rpm.publish_serial is not None or rpm.state in FINAL_STATES),
            Build.objects.filter(pk=build_id, state__in=FINAL_STATES).exists(),
        ]
        now = time.monotonic()
        # A stage passed between two polls counts as ending at the later one.
        while len(seen) < len(STAGES) and reached[len(seen)]:
            seen.append(now)
        if now > deadline:
            sys.exit(f"build {build_id} did not finish in {timeout} s")
        time.sleep(0.01)
    if not Build.objects.filter(pk=build_id, state="succeeded").exists():
        sys.exit(f"build {build_id} did not succeed; see {settings.RESULTS_ROOT}")
    return seen


def submit(user, project, srpm: Path) -> Build:
    upload = SimpleUploadedFile(srpm.name, srpm.read_bytes(), "application/x-rpm")
    return build_submit(
        user=user,
        project=project,
        source_type="upload",
        source_json={},
        upload=upload,
        options=BuildOptions(chroots=[CHROOT]),
    )


def wait_finished(build_ids: list[int], timeout: float = 3600) -> None:
    """Poll until the builds end: often for one build, where 10 ms is a visible error."""
    interval = 0.01 if len(build_ids) == 1 else 0.1
    # Built once: composing an ORM query per poll would take CPU from the service measured.
    sql, params = (
        Build.objects.filter(pk__in=build_ids).exclude(state__in=FINAL_STATES).values("pk")[:1]
    ).query.sql_with_params()
    deadline = time.monotonic() + timeout
    with connection.cursor() as cursor:
        while True:
            cursor.execute(sql, params)
            if cursor.fetchone() is None:
                break
            if time.monotonic() > deadline:
                sys.exit("timed out waiting for builds")
            time.sleep(interval)
    failed = Build.objects.filter(pk__in=build_ids).exclude(state="succeeded").count()
    if failed:
        sys.exit(f"{failed} build(s) did not succeed; see {settings.RESULTS_ROOT}")


def fresh_project(user, name: str):
    project = project_create(user=user, ownername=user.username, name=name, chroot_names=[CHROOT])
    project_key_ensure(project=project)  # key generation happens at creation, not per build
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--builds", type=int, default=200)
    parser.add_argument("--busy-builds", type=int, default=20, help="0 skips figure 3")
    parser.add_argument(
        "--single-runs", type=int, default=SINGLE_RUNS, help="runs of figure 1; 0 skips it"
    )
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    start_embedded_worker()
    user, _ = user_create_or_update(username="bench")
    srpm = make_srpm(WORK, name="trivial")
    slots = settings.LOCAL_BUILDER_SLOTS
    print(f"work dir {WORK}, builder slots {slots}")

    if args.single_runs:
        single_build(user, srpm, args.single_runs)
    burst(user, srpm, "many", args.builds, slots, label="(2)", target=" (target <= 1.2)")
    if args.busy_builds:
        # The same measure for builds that do some work, where fixed per-build costs amortize.
        busy = make_srpm(WORK, name="busy", build_script=f"{BUSY_LOOP}; gcc -o busy hello.c")
        burst(user, busy, "busy", args.busy_builds, slots, label="(3)", target="")


def single_build(user, srpm: Path, runs: int) -> None:
    """Figure 1; single builds are short and noisy: the median of a few runs of each side,
    and the median of each stage."""
    raw_runs = [raw_tools_steps(srpm, attempt) for attempt in range(runs)]
    raw = statistics.median(sum(steps) for steps in raw_runs)
    project = fresh_project(user, "single")
    service_runs = [submit_to_installable(user, project, srpm) for _ in range(runs)]
    single = statistics.median(total for total, _ in service_runs)
    print(f"(1) submit->installable {single:.2f} s; raw tools by hand {raw:.2f} s "
          f"(medians of {runs}); ratio {single / raw:.2f} (target <= 1.5)")  # fmt: skip
    for index, (stage, ends) in enumerate(STAGES):
        seconds = statistics.median(stages[index] for _, stages in service_runs)
        print(f"    {stage:<30} {seconds:6.3f} s  (until {ends})")
    for index, step in enumerate(("rpmbuild --rebuild", "rpmsign", "createrepo_c")):
        seconds = statistics.median(steps[index] for steps in raw_runs)
        print(f"    by hand: {step:<21} {seconds:6.3f} s")


def burst(user, srpm: Path, name: str, count: int, slots: int, *, label: str, target: str):
    """Submit `count` builds at once; compare the wall time with raw rpmbuild on `slots`,
    and with the raw tools doing all the same work by hand."""
    raw = statistics.median(raw_rebuild(srpm, WORK / f"raw-{name}-{i}") for i in range(RAW_RUNS))
    by_hand = raw_tools_burst(srpm, name, count, slots)
    sandboxed = sandboxed_runner_burst(srpm, name, count, slots)
    project = fresh_project(user, name)
    started = time.monotonic()
    ids = [submit(user, project, srpm).pk for _ in range(count)]
    wait_finished(ids)
    wall = time.monotonic() - started
    ideal = count * raw / slots
    runs = Repository.objects.filter(project=project).aggregate(runs=Sum("runs"))["runs"]
    print(f"{label} {count} builds: wall {wall:.1f} s, {runs} createrepo_c runs; "
          f"ratio to the raw tools by hand {wall / sum(by_hand):.2f}{target}")  # fmt: skip
    print_by_hand("the raw tools by hand", "rpmbuild --rebuild", "", by_hand, slots, wall)
    print_by_hand(
        "the same through the build sandbox by hand", "builders.runner", " of RPMs and SRPMs",
        sandboxed, slots, wall,
    )  # fmt: skip
    print(f"    raw rpmbuild {raw:.2f} s each (median of {RAW_RUNS}): ideal {ideal:.1f} s on "
          f"{slots} slots, coprsite takes {wall / ideal:.2f} times as long")  # fmt: skip


def print_by_hand(what, builds, signed, steps, slots, wall) -> None:
    rebuilds, signing, createrepo = steps
    total = sum(steps)
    print(
        f"    {what}: {total:.1f} s ({builds} {slots} at a time {rebuilds:.1f} s, then one "
        f"rpmsign{signed} {signing:.1f} s and one createrepo_c {createrepo:.1f} s); "
        f"coprsite takes {wall / total:.2f} times as long"
    )


def raw_tools_burst(srpm: Path, name: str, count: int, slots: int) -> list[float]:
    """The burst's work done by hand as fast as the tools allow: every rebuild on `slots`
    parallel rpmbuilds, then all RPMs signed in one rpmsign run and one createrepo_c."""
    repository = WORK / f"by-hand-{name}"
    repository.mkdir()  # parallel rpmbuilds race to create it and one of them fails
    return timed_by_hand(
        lambda i: raw_rebuild(srpm, repository / str(i)),
        count, slots, repository, "*/RPMS/*/*.rpm", what="the raw tools by hand",
    )  # fmt: skip


def sandboxed_runner_burst(srpm: Path, name: str, count: int, slots: int) -> list[float]:
    """The burst's builds through the runner the service uses, with none of the service:
    each build in its sandbox (build uid, bwrap, cgroup limits, sized workspace), `slots` at
    a time, then one rpmsign of everything the service signs and one createrepo_c. What is
    left between this and the service is the service's own cost (database, queue,
    scheduling, a signing and createrepo_c run per batch)."""
    repository = WORK / f"sandboxed-{name}"
    limits = default_job_limits()

    def build(index: int) -> None:
        spec = JobSpec(
            task_id=f"bench-{name}-{index}", kind=KIND_RPM, build_id=index, owner="raw",
            project="raw", result_dir=str(repository / str(index)),
            source={"srpm_path": str(srpm)}, chroot=CHROOT, arch="x86_64",
            macros=CHROOT_MACROS, workspaces_root=str(workspaces_root()),
            workspace_name=f"bench-{name}-{index}", limits=limits,
        )  # fmt: skip
        result = run_job(spec)
        if result.state != STATE_SUCCEEDED:
            sys.exit(f"the sandboxed runner failed: {result.failure_reason} ({spec.result_dir})")

    return timed_by_hand(build, count, slots, repository, "*/*.rpm", what="the sandbox by hand")


def timed_by_hand(
    build, count: int, slots: int, repository: Path, packages: str, *, what: str
) -> list[float]:
    """`build(i)` for each of `count` builds, `slots` at a time, then one rpmsign of the
    `packages` glob under `repository` and one createrepo_c: the seconds of the three.
    The signed packages are checked afterwards (not timed)."""
    keys = raw_keys()
    marks = [time.monotonic()]
    with ThreadPoolExecutor(slots) as pool:
        list(pool.map(build, range(count)))
    marks.append(time.monotonic())
    rpms = list(repository.glob(packages))
    gpg.sign_rpms(keys_root=keys, owner="raw", project="raw", rpm_paths=rpms)
    marks.append(time.monotonic())
    subprocess.run(["createrepo_c", "--no-database", str(repository)], check=True,
                   capture_output=True)  # fmt: skip
    marks.append(time.monotonic())
    check_baseline(what, rpms, builds=count, keys=keys)
    return [end - start for start, end in pairwise(marks)]


if __name__ == "__main__":
    main()
