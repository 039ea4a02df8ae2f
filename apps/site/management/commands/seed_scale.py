"""Fill an empty database with a large, deterministic instance for `bench/scale.py`.

The default sizes are those of the issue that measured coprsite at Copr's scale: 3,000
users, 100 groups, 10,000 projects, 30,000 packages and 100,000 builds with about 330,000
tasks over two years, plus one big project (8,000 builds, 1,500 packages) whose owner has
458 projects. Rows go in with `bulk_create` through the models, in batches, so the whole
instance takes a few minutes on PostgreSQL. The same arguments always give the same rows.

It is shaped like production, not like a bulk load: builds arrive in time order across all
projects (the big project's ids are interleaved with everyone else's), the newest
`--queue-percent` of them are still in the queue (pending, running or importing, some in
the background), finished ones include failed and cancelled builds, and nothing is
vacuumed at the end: the tables are analyzed, as autovacuum would, and left unvacuumed.
"""

import random
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from apps.accounts.models import Group, User
from apps.builds.models import Build, BuildTask, Priority, State
from apps.packages.models import Package, SourceType
from apps.projects.models import Chroot, Project, ProjectChroot

BATCH = 5000
UNUSABLE_PASSWORD = "!"  # noqa: S105 (Django's marker for "no password")
# Words that project and package names and descriptions are made of; `python` and `hello`
# are common, as they are in Copr, so searches for them find many rows.
WORDS = (
    "python", "hello", "ruby", "golang", "rust", "node", "perl", "lua", "kernel", "mesa",
    "gnome", "kde", "vim", "emacs", "tools", "utils", "server", "client", "lib", "devel",
    "qt", "gtk", "cli", "daemon", "fonts", "themes", "games", "science", "data", "net",
)  # fmt: skip
FINISHED = (State.SUCCEEDED,) * 8 + (State.FAILED, State.CANCELED)
# A live queue: more builds wait for a builder than run, a few make their SRPM.
QUEUED = (State.PENDING,) * 5 + (State.RUNNING,) * 3 + (State.IMPORTING,) * 2
TWO_YEARS = timedelta(days=730)
BIG_OWNER = "bigowner"
BIG_PROJECT = "bigproject"


class Command(BaseCommand):
    help = "Create a large deterministic instance (users, projects, packages, builds, tasks)."

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=3000)
        parser.add_argument("--groups", type=int, default=100)
        parser.add_argument("--projects", type=int, default=10000)
        parser.add_argument("--packages", type=int, default=30000)
        parser.add_argument("--builds", type=int, default=100000)
        parser.add_argument("--big-project-builds", type=int, default=8000)
        parser.add_argument("--big-project-packages", type=int, default=1500)
        parser.add_argument("--big-owner-projects", type=int, default=458)
        parser.add_argument(
            "--queue-percent",
            type=float,
            default=3.0,
            help="share of the newest builds still queued, running or importing",
        )
        parser.add_argument("--seed", type=int, default=13)

    def handle(self, *args, **options):
        if Project.objects.exists():
            raise CommandError("The database already has projects; seed an empty one.")
        if options["big_owner_projects"] > options["projects"]:
            raise CommandError("--big-owner-projects cannot exceed --projects.")
        # Deterministic sample data, not secrets.
        rng = random.Random(options["seed"])  # noqa: S311
        seeder = Seeder(rng, self.stdout)
        with transaction.atomic():
            seeder.users(options["users"], options["groups"])
            seeder.projects(options["projects"], options["big_owner_projects"])
            seeder.packages(options["packages"], options["big_project_packages"])
            seeder.builds(
                options["builds"], options["big_project_builds"], options["queue_percent"]
            )
        analyze()
        self.stdout.write(self.style.SUCCESS(f"big project: {BIG_OWNER}/{BIG_PROJECT}"))


def analyze() -> None:
    """Gather the planner's statistics, as autovacuum's ANALYZE does within a minute of a
    bulk load (a server may run with autovacuum off, as the project's VM does): without
    them PostgreSQL believes the new tables empty. No VACUUM: the tables keep the dead
    tuples, unset visibility map and unmerged index pending lists that production has."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")


class Seeder:
    def __init__(self, rng: random.Random, out):
        self.rng = rng
        self.out = out
        self.now = timezone.now().replace(microsecond=0)
        self.chroots = list(Chroot.objects.filter(is_active=True).order_by("name"))
        if len(self.chroots) < 4:
            raise CommandError("The chroot catalog is missing; run the migrations first.")

    def say(self, text: str) -> None:
        self.out.write(text)

    def name(self, index: int) -> str:
        return f"{self.rng.choice(WORDS)}-{self.rng.choice(WORDS)}-{index}"

    def users(self, count: int, groups: int) -> None:
        # "!" is Django's unusable password: nobody logs in as these users.
        names = [BIG_OWNER] + [f"user{index:05d}" for index in range(1, count)]
        people = [User(username=name, password=UNUSABLE_PASSWORD) for name in names]
        self.people = User.objects.bulk_create(people, batch_size=BATCH)
        self.groups = Group.objects.bulk_create(
            [
                Group(name=f"team{index:03d}", external_name=f"team{index:03d}")
                for index in range(groups)
            ]
        )
        self.say(f"{len(self.people)} users, {len(self.groups)} groups")

    def projects(self, count: int, big_owner_projects: int) -> None:
        rows = []
        for index in range(count):
            if index < big_owner_projects:
                owner = {"owner_user": self.people[0]}
            elif self.groups and index % 10 == 0:
                owner = {"owner_group": self.rng.choice(self.groups)}
            else:
                owner = {"owner_user": self.rng.choice(self.people[1:] or self.people)}
            name = BIG_PROJECT if index == 0 else self.name(index)
            words = " ".join(self.rng.choice(WORDS) for _ in range(6))
            rows.append(
                Project(
                    name=name,
                    description=f"Packages of {words}.",
                    created_on=self.now - TWO_YEARS + timedelta(minutes=index * 60),
                    **owner,
                )
            )
        self.all_projects = Project.objects.bulk_create(rows, batch_size=BATCH)
        self.project_chroots: dict[int, list[Chroot]] = {}
        links = []
        for project in self.all_projects:
            size = 4 if project.name == BIG_PROJECT else self.rng.choice((1, 2, 2, 3, 3, 3))
            chosen = self.rng.sample(self.chroots, size)
            self.project_chroots[project.pk] = chosen
            links += [ProjectChroot(project=project, chroot=chroot) for chroot in chosen]
        ProjectChroot.objects.bulk_create(links, batch_size=BATCH)
        self.say(f"{len(self.all_projects)} projects, {len(links)} project chroots")

    def packages(self, count: int, big_project_packages: int) -> None:
        big = self.all_projects[0]
        owners = [big] * min(big_project_packages, count)
        others = self.all_projects[1:] or self.all_projects
        owners += [self.rng.choice(others) for _ in range(count - len(owners))]
        rows = [
            Package(
                name=self.name(index),
                project=project,
                source_type=SourceType.SCM,
                source_json={"clone_url": f"https://git.example.org/pkg{index}.git"},
            )
            for index, project in enumerate(owners)
        ]
        self.packages_of: dict[int, list[Package]] = {}
        for package in Package.objects.bulk_create(rows, batch_size=BATCH):
            self.packages_of.setdefault(package.project_id, []).append(package)
        self.say(f"{len(rows)} packages")

    def builds(self, count: int, big_project_builds: int, queue_percent: float) -> None:
        big = self.all_projects[0]
        projects = [big] * min(big_project_builds, count)
        others = self.all_projects[1:] or self.all_projects
        projects += [self.rng.choice(others) for _ in range(count - len(projects))]
        # Builds arrive over two years from every project at once, so each project's ids
        # are spread over the table as in production, not one block per project.
        self.rng.shuffle(projects)
        queued_from = count - round(count * queue_percent / 100)
        step = TWO_YEARS / max(count, 1)
        done = 0
        for start in range(0, count, BATCH):
            chunk = projects[start : start + BATCH]
            builds = [
                self.build(
                    project,
                    self.now - TWO_YEARS + step * (start + offset),
                    queued=start + offset >= queued_from,
                )
                for offset, project in enumerate(chunk)
            ]
            builds = Build.objects.bulk_create(builds, batch_size=BATCH)
            tasks = [task for build in builds for task in self.tasks(build)]
            BuildTask.objects.bulk_create(tasks, batch_size=BATCH)
            done += len(tasks)
            self.say(f"{start + len(chunk)} builds, {done} tasks")

    def build(self, project: Project, submitted_on, *, queued: bool) -> Build:
        package = self.rng.choice(self.packages_of.get(project.pk) or [None])
        state = self.rng.choice(QUEUED if queued else FINISHED)
        chroots = self.project_chroots[project.pk]
        started = state not in (State.PENDING, State.IMPORTING) or not queued
        return Build(
            project=project,
            project_dirname=project.name,
            package=package,
            submitter_id=project.owner_user_id or self.people[0].pk,
            source_type=SourceType.SCM,
            source_json={"clone_url": "https://git.example.org/x.git", "committish": "main"},
            srpm_url=f"{project.name}/srpm-builds/x/{package.name if package else 'x'}.src.rpm",
            package_name=package.name if package else "",
            package_version="1.0-1",
            requested_chroots=[chroot.name for chroot in chroots],
            state=state,
            canceled=state == State.CANCELED,
            is_background=queued and self.rng.random() < 0.2,
            submitted_on=submitted_on,
            started_on=submitted_on + timedelta(seconds=30) if started else None,
            ended_on=None if queued else submitted_on + timedelta(seconds=300),
        )

    def tasks(self, build: Build) -> list[BuildTask]:
        """The source task and one task per chroot. A queued build's source task is done
        (or still importing) and its chroot tasks wait for a builder, one of them running
        when the build runs."""
        finished = build.ended_on is not None
        owner = str(build.project.owner_user_id or build.project.owner_group_id)
        source_state = State.IMPORTING if build.state == State.IMPORTING else State.SUCCEEDED
        tasks = [
            BuildTask(
                build=build,
                state=source_state,
                priority=Priority.SOURCE,
                owner_key=owner,
                result_dir=f"srpm-builds/{build.pk:08d}",
                **self.times(build, started=True, finished=source_state == State.SUCCEEDED),
            )
        ]
        for index, chroot in enumerate(self.project_chroots[build.project_id]):
            state = self.chroot_state(build, first=index == 0)
            succeeded = state == State.SUCCEEDED
            packages = [
                {
                    "name": build.package_name or "x",
                    "epoch": 0,
                    "version": "1.0",
                    "release": "1",
                    "arch": chroot.arch,
                }
            ]
            tasks.append(
                BuildTask(
                    build=build,
                    chroot=chroot,
                    state=state,
                    owner_key=owner,
                    result_dir=f"{chroot.name}/{build.pk:08d}-x" if finished else "",
                    built_packages=packages if succeeded else [],
                    result_files=["x.rpm", "builder-live.log.gz"] if finished else [],
                    **self.times(build, started=state != State.PENDING, finished=finished),
                )
            )
        return tasks

    @staticmethod
    def chroot_state(build: Build, *, first: bool) -> State:
        if build.state == State.IMPORTING:
            return State.WAITING
        if build.state == State.RUNNING:
            return State.RUNNING if first else State.PENDING
        return build.state

    @staticmethod
    def times(build: Build, *, started: bool, finished: bool) -> dict:
        return {
            "queued_on": build.submitted_on,
            "started_on": build.submitted_on + timedelta(seconds=30) if started else None,
            "ended_on": build.submitted_on + timedelta(seconds=300) if finished else None,
        }
