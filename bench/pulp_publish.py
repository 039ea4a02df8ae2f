"""Publishing benchmark for the repository stores, each against the same work done by hand.

Prints three ratios, service time divided by by-hand time:
1. publishing one build into a repository that holds --packages packages (10,000) with the
   filesystem store (apps/repos/stores/filesystem.py), against `createrepo_c --update
   --pkglist` run by hand on a copy of the same directory;
2. the same with the Pulp store (apps/repos/stores/pulp.py), against the Pulp REST calls by
   hand on a copy of the same Pulp repository (upload, modify, publication, distribution);
3. a burst of --burst builds (200) finishing together with the Pulp store (coalesced into
   one run), against the same REST calls by hand (200 uploads, one modify, one publication).
Each baseline is checked to have done the work (its repository lists the packages).

Signing is not timed (the same rpmsign either way). It runs the service layer in this
process on a fresh SQLite database and a real Pulp started as the tests start it
(tests/pulp_server.py: scripts/install-pulp's venv and PostgreSQL on 127.0.0.1).

    .venv/bin/python bench/pulp_publish.py [--packages 10000] [--burst 200]
"""

import argparse
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WORK = Path(tempfile.mkdtemp(prefix="coprsite-bench-pulp-"))
os.environ.update({"VAR_DIR": str(WORK / "var"), "DJANGO_SETTINGS_MODULE": "coprsite.settings"})
os.environ.setdefault("LOG_LEVEL", "WARNING")
for name in ("RESULTS_ROOT", "KEYS_ROOT", "UPLOADS_ROOT", "DATABASE_URL", "BROKER_URL"):
    os.environ.pop(name, None)

import django  # noqa: E402  (the environment above must be set first)

django.setup()

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402

from apps.accounts.services import user_create_or_update  # noqa: E402
from apps.builds.models import Build, BuildTask, State  # noqa: E402
from apps.core.paths import chroot_results_dir  # noqa: E402
from apps.projects.models import Chroot  # noqa: E402
from apps.repos import createrepo  # noqa: E402
from apps.repos.models import Repository  # noqa: E402
from apps.repos.services import (  # noqa: E402
    project_key_ensure,
    project_publish,
    repository_regenerate,
)
from apps.repos.stores.pulp import pulp_context, repository_name  # noqa: E402
from apps.workflows.projects import project_create  # noqa: E402
from tests.pulp_server import ADMIN_PASSWORD, drop_database, start_pulp  # noqa: E402

CHROOT = "fedora-43-x86_64"


def make_packages(directory: Path, prefix: str, count: int) -> list[Path]:
    """`count` distinct tiny noarch RPMs from one rpmbuild run (subpackages of one spec)."""
    spec = directory / f"{prefix}.spec"
    lines = ["Name: " + prefix, "Version: 1", "Release: 1", "Summary: bench", "License: MIT"]
    lines += ["BuildArch: noarch", "AutoReqProv: no", "%description", "bench"]
    for index in range(count):
        name = f"{prefix}-{index:05d}"
        lines += [f"%package -n {name}", "Summary: bench", f"%description -n {name}", "bench"]
        lines += [f"%files -n {name}"]
    directory.mkdir(parents=True, exist_ok=True)
    spec.write_text("\n".join(lines) + "\n")
    topdir = directory / "rpmbuild"
    subprocess.run(
        ["rpmbuild", "-bb", "--define", f"_topdir {topdir}", str(spec)],
        check=True,
        capture_output=True,
    )
    return sorted((topdir / "RPMS" / "noarch").glob(f"{prefix}-*.rpm"))


def new_project(user, name: str):
    project = project_create(user=user, ownername=user.username, name=name, chroot_names=[CHROOT])
    project_key_ensure(project=project)
    return project


def task_with_files(project, rpms: list[Path], state: str) -> BuildTask:
    """A task whose RPMs lie in its result dir (hard links): built, or already published."""
    build = Build.objects.create(
        project=project, project_dirname=project.name, state=state, source_type="upload"
    )
    result_dir = f"{CHROOT}/{build.pk:08d}-{rpms[0].name.rsplit('-', 2)[0]}"
    task = BuildTask.objects.create(
        build=build,
        chroot=Chroot.objects.get(name=CHROOT),
        state=state,
        result_dir=result_dir,
        result_files=[rpm.name for rpm in rpms],
        ended_on=None,
    )
    directory = (
        chroot_results_dir(project.ownername, project.name, CHROOT) / result_dir.split("/", 1)[1]
    )
    directory.mkdir(parents=True)
    for rpm in rpms:
        os.link(rpm, directory / rpm.name)
    return task


def publish_timed(project) -> tuple[float, Repository]:
    """Sign what waits (untimed), then time the repository run."""
    project_publish(project=project)
    repository = Repository.objects.get(project=project)
    started = time.monotonic()
    repository_regenerate(repository_id=repository.pk)
    elapsed = time.monotonic() - started
    repository.refresh_from_db()
    return elapsed, repository


def check_succeeded(project, expected_packages: int, repository: Repository) -> None:
    waiting = BuildTask.objects.filter(build__project=project).exclude(state=State.SUCCEEDED)
    if waiting.exists() or repository.package_count != expected_packages:
        sys.exit(f"service did not publish: {repository.package_count} packages, {waiting}")


# --- 1. filesystem -----------------------------------------------------------------------


def filesystem_figure(user, base_rpms: list[Path], new_rpm: Path) -> None:
    settings.REPOSITORY_STORE = "filesystem"
    project = new_project(user, "fs10k")
    task_with_files(project, base_rpms, State.SUCCEEDED)
    repository, _ = Repository.objects.get_or_create(
        project=project, project_dirname=project.name, chroot=Chroot.objects.get(name=CHROOT)
    )
    Repository.objects.filter(pk=repository.pk).update(requested_serial=1)
    repository_regenerate(repository_id=repository.pk)  # the existing repository (untimed)
    chroot_dir = chroot_results_dir(project.ownername, project.name, CHROOT)
    # The baseline's copy, taken before the service's run changes repodata/.
    by_hand = WORK / "by-hand-fs"
    subprocess.run(["cp", "-al", str(chroot_dir), str(by_hand)], check=True)
    shutil.rmtree(by_hand / "repodata")
    shutil.copytree(chroot_dir / "repodata", by_hand / "repodata")

    task = task_with_files(project, [new_rpm], State.RUNNING)
    service, repository = publish_timed(project)
    check_succeeded(project, len(base_rpms) + 1, repository)

    # By hand: the same createrepo_c command on the copy, the signed RPM put in place.
    build_dir = task.result_dir.split("/", 1)[1]
    (by_hand / build_dir).mkdir()
    shutil.copy(chroot_dir / build_dir / new_rpm.name, by_hand / build_dir)
    pkglist = [str(path.relative_to(by_hand)) for path in sorted(by_hand.rglob("*.rpm"))]
    listing = WORK / "pkglist.txt"
    listing.write_text("".join(f"{entry}\n" for entry in pkglist))
    command = [
        "createrepo_c",
        str(by_hand),
        "--no-database",
        "--general-compress-type=gz",
        "--ignore-lock",
        "--update",
        "--retain-old-md-by-age=1h",
        "--pkglist",
        str(listing),
    ]
    started = time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    raw = time.monotonic() - started
    if createrepo.count_packages(by_hand) != len(base_rpms) + 1:
        sys.exit("by-hand createrepo_c did not list every package")
    print_ratio(
        f"(1) filesystem: one build into {len(base_rpms)} packages", service, raw, "createrepo_c"
    )


# --- 2. and 3. Pulp ----------------------------------------------------------------------


class PulpByHand:
    """The Pulp REST calls a person would make, with requests, polling tasks at 50 ms."""

    def __init__(self, api_url: str) -> None:
        self.api = api_url
        self.session = requests.Session()
        self.session.auth = ("admin", ADMIN_PASSWORD)

    def call(self, method: str, path: str, **kwargs) -> dict:
        url = path if path.startswith("http") else f"{self.api}{path}"
        response = self.session.request(method, url, timeout=600, **kwargs)
        response.raise_for_status()
        body = response.json() if response.content else {}
        if "task" in body and len(body) == 1:
            return self.wait(body["task"])
        return body

    def wait(self, task_href: str) -> dict:
        while True:
            task = self.session.get(f"{self.api}{task_href}", timeout=60).json()
            if task["state"] == "completed":
                return task
            if task["state"] in ("failed", "canceled"):
                sys.exit(f"by-hand Pulp task {task_href} {task['state']}: {task.get('error')}")
            time.sleep(0.05)

    def repository(self, name: str, content: list[str]) -> str:
        href = self.call("POST", "/pulp/api/v3/repositories/rpm/rpm/", json={"name": name})[
            "pulp_href"
        ]
        if content:
            self.call("POST", f"{href}modify/", json={"add_content_units": content})
        return href

    def publish(self, repository: str, rpms: list[Path], name: str) -> None:
        """Upload, one new version, a publication, the distribution pointed at it."""
        hrefs = []
        for rpm in rpms:
            with open(rpm, "rb") as file:
                created = self.call(
                    "POST", "/pulp/api/v3/content/rpm/packages/upload/", files={"file": file}
                )
            hrefs.append(created["pulp_href"])
        task = self.call("POST", f"{repository}modify/", json={"add_content_units": hrefs})
        version = task["created_resources"][0]
        task = self.call(
            "POST", "/pulp/api/v3/publications/rpm/rpm/", json={"repository_version": version}
        )
        publication = task["created_resources"][0]
        self.call(
            "POST",
            "/pulp/api/v3/distributions/rpm/rpm/",
            json={"name": name, "base_path": name, "publication": publication},
        )

    def version_count(self, repository: str) -> int:
        latest = self.call("GET", repository)["latest_version_href"]
        listing = self.call(
            "GET", "/pulp/api/v3/content/rpm/packages/", params={"repository_version": latest}
        )
        return listing["count"]


def served_count(content_url: str, base_path: str) -> int:
    """Packages the content app's repodata lists (the check that the work was done)."""
    directory = WORK / f"served-{base_path.replace('/', '_')}"
    (directory / "repodata").mkdir(parents=True)
    base = f"{content_url}/{base_path}/"
    repomd = requests.get(f"{base}repodata/repomd.xml", timeout=60)
    repomd.raise_for_status()
    (directory / "repodata" / "repomd.xml").write_bytes(repomd.content)
    text = repomd.text
    start = text.index('href="', text.index('type="primary"')) + len('href="')
    primary = text[start : text.index('"', start)]
    (directory / primary).write_bytes(requests.get(base + primary, timeout=60).content)
    return createrepo.count_packages(directory)


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:  # noqa: A002  (the base class's name)
        pass


def pulp_existing_repository(project, base_rpms: list[Path], base_task: BuildTask, server) -> None:
    """Fill the project's Pulp repository with the base packages (untimed): a sync from the
    filesystem repository served on loopback, then the labels the store reads."""
    source = WORK / "pulp-source"
    source.mkdir()
    for rpm in base_rpms:
        os.link(rpm, source / rpm.name)
    createrepo.regenerate_repository(source)
    handler = functools.partial(QuietHandler, directory=str(source))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    by_hand = PulpByHand(server.api_url)
    remote = by_hand.call(
        "POST",
        "/pulp/api/v3/remotes/rpm/rpm/",
        json={
            "name": "bench-source",
            "url": f"http://127.0.0.1:{httpd.server_port}/",
            "policy": "immediate",
        },  # fmt: skip
    )["pulp_href"]
    name = repository_name(
        Repository(project=project, project_dirname=project.name, chroot=base_task.chroot)
    )
    repository = by_hand.call(
        "POST",
        "/pulp/api/v3/repositories/rpm/rpm/",
        json={"name": name, "retain_repo_versions": 1},
    )["pulp_href"]
    by_hand.call("POST", f"{repository}sync/", json={"remote": remote, "sync_policy": "additive"})
    httpd.shutdown()
    # Label them as the store does (one build holds them all here), in Pulp's own shell.
    script = (
        "from pulp_rpm.app.models import Package; "
        f"Package.objects.filter(name__startswith='base-').update(pulp_labels="
        f"{{'build_id': '{base_task.build_id}', 'chroot': '{CHROOT}'}})"
    )
    server.manager("shell", "-c", script)


def pulp_figures(user, base_rpms, new_rpm, burst_rpms, server) -> None:
    settings.REPOSITORY_STORE = "pulp"
    settings.PULP_URL = server.api_url
    settings.PULP_CONTENT_URL = server.content_url
    settings.PULP_PASSWORD = ADMIN_PASSWORD
    by_hand = PulpByHand(server.api_url)

    # (2) one build into a repository of len(base_rpms) packages
    project = new_project(user, "pulp10k")
    base_task = task_with_files(project, base_rpms, State.SUCCEEDED)
    pulp_existing_repository(project, base_rpms, base_task, server)
    base_hrefs = [
        package["pulp_href"]
        for package in pulp_context().call(
            "content_rpm_packages_list",
            parameters={"name__startswith": "base-", "fields": ["pulp_href"], "limit": 100000},
        )["results"]
    ]
    pulp_context()  # the API description is read once per process, not per publish
    task = task_with_files(project, [new_rpm], State.RUNNING)
    service, repository = publish_timed(project)
    check_succeeded(project, len(base_rpms) + 1, repository)
    signed = chroot_results_dir(project.ownername, project.name, task.result_dir) / new_rpm.name
    hand_repository = by_hand.repository("by-hand/10k", base_hrefs)
    started = time.monotonic()
    by_hand.publish(hand_repository, [signed], "by-hand/10k")
    raw = time.monotonic() - started
    if by_hand.version_count(hand_repository) != len(base_rpms) + 1:
        sys.exit("by-hand Pulp calls did not add the package")
    if served_count(server.content_url, "by-hand/10k") != len(base_rpms) + 1:
        sys.exit("by-hand Pulp publication does not list every package")
    if served_count(server.content_url, repository_name(repository)) != len(base_rpms) + 1:
        sys.exit("the Pulp store's publication does not list every package")
    print_ratio(
        f"(2) Pulp: one build into {len(base_rpms)} packages", service, raw, "Pulp REST calls"
    )

    # (3) a burst of builds finishing together
    project = new_project(user, "burst")
    tasks = [task_with_files(project, [rpm], State.RUNNING) for rpm in burst_rpms]
    service, repository = publish_timed(project)
    check_succeeded(project, len(burst_rpms), repository)
    signed = [
        chroot_results_dir(project.ownername, project.name, task.result_dir) / task.result_files[0]
        for task in tasks
    ]
    hand_repository = by_hand.repository("by-hand/burst", [])
    started = time.monotonic()
    by_hand.publish(hand_repository, signed, "by-hand/burst")
    raw = time.monotonic() - started
    if served_count(server.content_url, "by-hand/burst") != len(burst_rpms):
        sys.exit("by-hand Pulp burst does not list every package")
    print_ratio(f"(3) Pulp: a burst of {len(burst_rpms)} builds", service, raw, "Pulp REST calls")


def print_ratio(what: str, service: float, raw: float, baseline: str) -> None:
    print(
        f"{what}: service {service:.2f} s, {baseline} by hand {raw:.2f} s, "
        f"ratio {service / raw:.2f}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", type=int, default=10000)
    parser.add_argument("--burst", type=int, default=200)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    user, _ = user_create_or_update(username="bench")
    base_rpms = make_packages(WORK / "base", "base", args.packages)
    [new_rpm] = make_packages(WORK / "new", "new", 1)
    burst_rpms = make_packages(WORK / "burst", "burst", args.burst)
    print(f"work dir {WORK}", flush=True)
    filesystem_figure(user, base_rpms, new_rpm)
    started = time.monotonic()
    server = start_pulp(WORK / "pulp", purpose="bench")
    print(f"Pulp started in {time.monotonic() - started:.1f} s", flush=True)
    try:
        pulp_figures(user, base_rpms, new_rpm, burst_rpms, server)
    finally:
        server.stop()
        drop_database(server.database)


if __name__ == "__main__":
    main()
