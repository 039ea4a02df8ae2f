"""Rebuild an SRPM into RPMs: rpmbuild inside the sandbox, or mock when the builder has it."""

from __future__ import annotations

import io
import os
import platform
import re
import shlex
import shutil
import subprocess
import tarfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from builders.failures import (
    BuildFailure,
    fedora_macros,
    macros_in_output,
    reason_for_missing_macros,
    reason_from_rpmbuild,
    shorten,
)
from builders.livelog import LiveLog
from builders.mockconfig import CHILD_CONFIG, base_config, child_config
from builders.protocol import JobSpec
from builders.results import (
    BUILD_LOG,
    CONFIGS_ARCHIVE,
    ROOT_LOG,
    UnsafeOutput,
    copy_out,
    list_directories,
    list_files,
)
from builders.sandbox import BUILD_DIR, Watchdog, Workspace, run_sandboxed, run_streamed

RPMBUILD_DIR = "rpmbuild"
# Where the builder's RPM database (if it has one) appears, read-only, in the sandbox.
SANDBOX_RPMDB = "/var/lib/rpm"
MOCK_RESULTS_DIR = "mock-results"
CONFIGS_DIR = "configs"  # the directory configs.tar.gz unpacks to, as Copr's
_MACRO_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HOST_QUERY_TIMEOUT_SECONDS = 120
# Packages are installed on a builder between builds, not during them.
RPMDB_CACHE_SECONDS = 60
_host_answers: dict[tuple[str, ...], tuple[object, float]] = {}  # key: (answer, expires)
# Enough of a spec to find the macros it uses; a failure reason never needs more.
SPEC_SCAN_BYTES = 1 << 20

# A path of a built package, relative to the workspace root.
OutputPath = tuple[str, ...]

# What Fedora's buildroot (redhat-rpm-config) sets for every build and Debian's rpm lacks:
# -debuginfo and -debugsource subpackages made by find-debuginfo (the debugedit package,
# with eu-strip from elfutils). Its %install trick puts %debug_package into every spec
# that unpacks its sources (%setup sets buildsubdir), as on Fedora; `%global debug_package
# %{nil}` in a spec turns it off there too.
# Written as the build's ~/.rpmmacros: `rpmbuild --target` reloads the configuration and
# would drop a file given with --load.
BUILDROOT_MACROS_FILE = ".rpmmacros"
BUILDROOT_MACROS = """\
%_enable_debug_packages 1
%_debugsource_packages 1
%install %{?_enable_debug_packages:%{?buildsubdir:%{debug_package}}}\\
%%install\\
%{nil}
"""


def host_arch() -> str:
    """The RPM arch this machine builds natively (x86_64, aarch64, ...)."""
    return platform.machine()


def check_arch(arch: str | None) -> None:
    """Fail early when the task asks for an arch this builder cannot produce honestly."""
    if arch is None or arch in ("noarch", host_arch()):
        return
    # rpmbuild --target would happily label host binaries as another arch.
    raise BuildFailure(f"this builder cannot build {arch} packages: it runs on {host_arch()}")


def copr_macros(*, owner: str, project: str, build_id: int) -> dict[str, str]:
    """The macros Copr defines for every step of a build, the SRPM one included."""
    return {
        "copr_username": owner,
        "copr_projectname": project,
        "buildtag": f".copr{build_id}",
        "vendor": f"coprsite {owner}/{project}",
    }


def job_macros(spec: JobSpec) -> dict[str, str]:
    """Copr's per-build macros, overridable by the chroot's own (`spec.macros`)."""
    macros = {
        **copr_macros(owner=spec.owner, project=spec.project, build_id=spec.build_id),
        **spec.macros,
    }
    for name, value in macros.items():
        # A newline would let a value define further macros behind the portal's back.
        if not _MACRO_NAME.match(name) or "\n" in value or "\r" in value:
            raise BuildFailure(shorten(f"invalid macro in the job: {name!r}"))
    return macros


def define_args(macros: dict[str, str]) -> list[str]:
    """`--define "name value"` arguments for rpmbuild (mock gets them in child.cfg)."""
    args: list[str] = []
    for name, value in macros.items():
        args += ["--define", f"{name} {value}"]
    return args


def _host_env() -> dict[str, str]:
    # HOME matters: rpm on Debian keeps its database in ~/.rpmdb.
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": os.environ.get("HOME", "/")}


def _query_host(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=_host_env(),
        timeout=_HOST_QUERY_TIMEOUT_SECONDS,
        check=False,
    )


def host_rpmdb() -> str | None:
    """The directory of this builder's RPM database when it lists packages, else None.

    Asked once a minute, not per build: two rpm processes are ~5% of a trivial build.
    """
    home = _host_env()["HOME"]  # rpm on Debian keeps its database under HOME
    return _host_answer(("rpmdb", home), _query_rpmdb)


def _host_answer(key: tuple[str, ...], query: Callable[[], object]):
    """What `query` answered about this builder less than RPMDB_CACHE_SECONDS ago, or its
    answer now."""
    now = time.monotonic()
    cached = _host_answers.get(key)
    if cached is None or now >= cached[1]:
        cached = _host_answers[key] = (query(), now + RPMDB_CACHE_SECONDS)
    return cached[0]


def _query_rpmdb() -> str | None:
    evaluated = _query_host(["rpm", "--eval", "%{_dbpath}"])
    dbpath = evaluated.stdout.strip()
    if evaluated.returncode != 0 or not os.path.isdir(dbpath):
        return None
    installed = _query_host(["rpm", "-qa"])
    return dbpath if installed.returncode == 0 and installed.stdout.strip() else None


def rebuild_command(
    srpm_name: str,
    macros: dict[str, str],
    *,
    arch: str | None,
    check_deps: bool,
) -> list[str]:
    """The rpmbuild command line run inside the sandbox."""
    # -ra writes the rebuilt src.rpm too (with the chroot's %dist), as mock --rebuild does.
    command = ["rpmbuild", "-ra"]
    if check_deps:
        command += ["--define", f"_dbpath {SANDBOX_RPMDB}"]
    else:
        command.append("--nodeps")
    if arch and arch != "noarch":
        command += ["--target", arch]
    command += ["--define", f"_topdir {BUILD_DIR}/{RPMBUILD_DIR}"]
    return command + define_args(macros) + [f"{BUILD_DIR}/{srpm_name}"]


def _built_packages(workspace: Workspace) -> list[OutputPath]:
    top = ("build", RPMBUILD_DIR)
    found = list_files(workspace.root, (*top, "SRPMS"), ".rpm")
    for arch in list_directories(workspace.root, (*top, "RPMS")):
        found += list_files(workspace.root, (*top, "RPMS", arch), ".rpm")
    return found


def rpmbuild_rebuild(
    spec: JobSpec,
    workspace: Workspace,
    srpm_name: str,
    build_requires: Sequence[str],
    *,
    log: LiveLog,
    watchdog: Watchdog,
    result_dir: Path,
) -> list[OutputPath]:
    """Run `rpmbuild -ra` on the SRPM in the workspace; return the packages it wrote.

    Leaves root.log (what the buildroot was), build.log (rpmbuild's output) and
    configs.tar.gz (the macros it ran with) in `result_dir`, whatever the outcome.
    """
    required = ", ".join(build_requires) or "(none)"
    dbpath = host_rpmdb()
    if dbpath is None:
        requirements = (
            "BuildRequires were NOT checked: this builder has no RPM database "
            f"(host buildroot). Required: {required}"
        )
        binds: list[tuple[str, str]] = []
    else:
        # rpmbuild itself checks them (versions and rich dependencies included) against
        # the host database, mounted read-only; `rpm -q --whatprovides` ignores versions.
        requirements = f"BuildRequires are checked against the RPM database {dbpath}: {required}"
        binds = [(dbpath, SANDBOX_RPMDB)]
    log.info(requirements)
    macros = job_macros(spec)
    (workspace.build_dir / BUILDROOT_MACROS_FILE).write_text(BUILDROOT_MACROS)
    command = rebuild_command(
        srpm_name,
        macros,
        arch=spec.arch,
        check_deps=dbpath is not None,
    )
    log.info("Running: " + shlex.join(command))
    write_root_log(result_dir / ROOT_LOG, spec, [requirements, "Command: " + shlex.join(command)])
    write_configs(
        result_dir / CONFIGS_ARCHIVE,
        {
            # What a builder with mock would have built in: the same settings, for the record.
            CHILD_CONFIG: child_config(spec, macros),
            "buildroot.macros": BUILDROOT_MACROS,
            "job.macros": macros_file_text(macros),
            "rpmbuild.cmdline": shlex.join(command) + "\n",
        },
    )
    with log.copy_to(result_dir / BUILD_LOG):
        outcome = run_sandboxed(
            command,
            workspace,
            network=spec.enable_net,
            log=log,
            watchdog=watchdog,
            read_only_binds=binds,
        )
    if outcome.exit_code != 0:
        # A spec written for Fedora's buildroot (pyp2spec's %pyproject_*, %autorelease)
        # fails here in some odd place; naming the missing macros says why.
        names = macros_in_output(outcome.lines) + fedora_macros_in_spec(workspace)
        undefined = undefined_macros(list(dict.fromkeys(names)))
        if undefined:
            raise BuildFailure(reason_for_missing_macros(undefined))
        raise BuildFailure(reason_from_rpmbuild(outcome.lines, outcome.exit_code))
    return _built_packages(workspace)


def host_description() -> list[str]:
    """This builder's system and rpm, for root.log."""
    try:
        release = dict(
            line.split("=", 1)
            for line in Path("/etc/os-release").read_text().splitlines()
            if "=" in line
        )
        system = release.get("PRETTY_NAME", "unknown").strip('"')
    except OSError:
        system = "unknown"
    return [f"Host system: {system} ({host_arch()})", f"Host {host_rpm_version()}"]


def host_rpm_version() -> str:
    """`rpm --version` of this builder, asked once a minute like host_rpmdb, not per build."""
    return _host_answer(("rpm --version",), _query_rpm_version)


def _query_rpm_version() -> str:
    return _query_host(["rpm", "--version"]).stdout.strip() or "rpm: unknown version"


def write_root_log(path: Path, spec: JobSpec, details: list[str]) -> None:
    """root.log: mock says there how it made the chroot; here no chroot is made, and it says so."""
    lines = [
        f"Buildroot for {spec.chroot}: NOT a mock chroot. rpmbuild runs on this builder's own",
        "system in a bubblewrap sandbox (read-only /usr, private /tmp, the build's workspace),",
        "with the chroot's macros on the command line and Fedora's buildroot defaults (debug",
        "packages) in ~/.rpmmacros; configs.tar.gz holds both, and the child.cfg mock would use.",
        *host_description(),
        *details,
    ]
    path.write_text("".join(f"INFO: {line}\n" for line in lines))


def macros_file_text(macros: dict[str, str]) -> str:
    """`macros` in rpm's macro file syntax (values were checked to hold no newline)."""
    return "".join(f"%{name} {value}\n" for name, value in macros.items())


def write_configs(path: Path, files: dict[str, str]) -> None:
    """configs.tar.gz: the build's chroot configuration, under `configs/` as Copr has it."""
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            member = tarfile.TarInfo(f"{CONFIGS_DIR}/{name}")
            member.size = len(data)
            member.mtime = int(time.time())
            member.mode = 0o644
            archive.addfile(member, io.BytesIO(data))


def fedora_macros_in_spec(workspace: Workspace) -> list[str]:
    """The Fedora-only macros (FEDORA_MACRO_PACKAGES) the installed spec uses.

    rpmbuild stops at the first one it trips over; the spec names the others too.
    """
    specs = list_files(workspace.root, ("build", RPMBUILD_DIR, "SPECS"), ".spec")
    if len(specs) != 1:
        return []
    copy = workspace.staging / "failed.spec"
    try:
        copy_out(workspace.root, specs[0], copy)
        with open(copy, "rb") as spec:
            text = spec.read(SPEC_SCAN_BYTES).decode(errors="replace")
    except (UnsafeOutput, OSError):
        return []
    finally:
        copy.unlink(missing_ok=True)
    return fedora_macros(text)


def undefined_macros(names: Sequence[str]) -> list[str]:
    """Those of `names` that this builder's rpm does not define (the sandbox uses the same)."""
    if not names:
        return []
    probe = _query_host(
        ["rpm", "--eval", " ".join(f"%{{?{name}:1}}%{{!?{name}:0}}" for name in names)]
    )
    flags = probe.stdout.split()
    if probe.returncode != 0 or len(flags) != len(names):
        return []
    return [name for name, flag in zip(names, flags, strict=True) if flag == "0"]


def mock_available(spec: JobSpec) -> bool:
    """Whether this job names a mock config and this builder has mock."""
    return bool(spec.mock_config) and shutil.which("mock") is not None


def mock_rebuild(
    spec: JobSpec,
    workspace: Workspace,
    srpm_name: str,
    *,
    log: LiveLog,
    watchdog: Watchdog,
    result_dir: Path,
) -> list[OutputPath]:
    """Run `mock -r child.cfg --rebuild`; return the packages it wrote.

    child.cfg includes the chroot's mock config and adds the build's settings, as on
    Copr's builders. mock isolates the build itself (its own chroot and systemd-nspawn, run
    by a user of the mock group), so it is not wrapped in bubblewrap.
    """
    mock = shutil.which("mock")
    assert mock is not None
    results = workspace.root / MOCK_RESULTS_DIR
    results.mkdir(exist_ok=True)
    configs = workspace.root / CONFIGS_DIR
    configs.mkdir(exist_ok=True)
    child = configs / CHILD_CONFIG
    child.write_text(child_config(spec, job_macros(spec)))
    command = [mock, "-r", str(child), "--rebuild", str(workspace.build_dir / srpm_name)]
    command += ["--resultdir", str(results)]
    for option in spec.build_config.get("with_opts", []):
        command += ["--with", option]
    for option in spec.build_config.get("without_opts", []):
        command += ["--without", option]
    log.info("Running: " + shlex.join(command))
    write_configs(
        result_dir / CONFIGS_ARCHIVE,
        {CHILD_CONFIG: child.read_text(), **mock_config_files(base_config(spec))},
    )
    try:
        outcome = run_streamed(command, log=log, watchdog=watchdog)
    finally:
        keep_mock_logs(workspace, result_dir)
    if outcome.exit_code != 0:
        # mock keeps rpmbuild's output in build.log, its own in the streamed output.
        build_log = results / "build.log"
        lines = build_log.read_text(errors="replace").splitlines() if build_log.exists() else []
        raise BuildFailure(reason_from_rpmbuild(lines or outcome.lines, outcome.exit_code))
    return list_files(workspace.root, (MOCK_RESULTS_DIR,), ".rpm")


def mock_config_files(config: str) -> dict[str, str]:
    """The base config child.cfg includes, for configs.tar.gz (Copr copies all of /etc/mock)."""
    path = Path(config)
    try:
        return {path.name: path.read_text()}
    except (OSError, UnicodeDecodeError):
        return {"mock-config.txt": f"{config}\n"}


def keep_mock_logs(workspace: Workspace, result_dir: Path) -> None:
    """mock's own logs of the buildroot and of rpmbuild, in the results as Copr has them."""
    for name in (BUILD_LOG, ROOT_LOG, "state.log"):
        try:
            copy_out(workspace.root, (MOCK_RESULTS_DIR, name), result_dir / name)
        except (UnsafeOutput, OSError):
            continue
