"""Publishing an already-built binary RPM (copr-cli `uploadrpm`): no source or RPM build runs.

The upload becomes a build with one task per matching chroot, its results placed as a
builder would leave them; signing and the repository follow as for built RPMs.
"""

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from apps.builds.lifecycle import build_refresh_state
from apps.builds.models import Build, BuildTask, Priority, State
from apps.builds.services import BuildOptions, checked_dirname, select_chroots
from apps.core.errors import PermissionDenied, ServiceError
from apps.core.paths import project_results_dir
from apps.core.queue import send_on_commit
from apps.packages.models import Package
from apps.projects.models import Chroot, Project
from apps.projects.permissions import can_build_in
from builders.srpm import BadRpm, read_rpm_nevra

SOURCE_RPM_SUFFIXES = (".src.rpm", ".nosrc.rpm")


def build_upload_rpm(
    *,
    user,
    project: Project,
    upload: UploadedFile,
    options: BuildOptions = BuildOptions(),  # noqa: B008 (frozen, never mutated)
) -> Build:
    """Publish an already-built binary RPM (copr-cli `uploadrpm`): no source or RPM build runs.

    One task per chosen chroot whose arch matches the RPM (or any, for noarch). The tasks
    wait, `running`, until the RPM is signed and in the repository, like built ones.
    """
    if not can_build_in(user, project):
        raise PermissionDenied(
            f"User '{user.username}' is not allowed to build in the project {project.full_name}."
        )
    dirname = checked_dirname(project, options.project_dirname)
    chroots = select_chroots(project, options.chroots, options.exclude_chroots)
    with uploaded_rpm_read(upload) as (rpm_path, nevra):
        matching = [c for c in chroots if nevra["arch"] in ("noarch", c.arch)]
        if not matching:
            raise ServiceError(
                f"{upload.name} is built for {nevra['arch']}; none of the chosen chroots "
                f"({', '.join(c.name for c in chroots)}) has that architecture."
            )
        with transaction.atomic():
            build = rpm_upload_build_create(user, project, dirname, nevra, matching)
            tasks = [
                rpm_upload_task_create(build, chroot, rpm_path.name, nevra) for chroot in matching
            ]
            build_refresh_state(build_id=build.pk)
            rpm_upload_publish(tasks=tasks, rpm_path=rpm_path)
    build.refresh_from_db()
    return build


def rpm_upload_build_create(user, project: Project, dirname: str, nevra: dict, chroots) -> Build:
    package, _ = Package.objects.get_or_create(project=project, name=nevra["name"])
    epoch = f"{nevra['epoch']}:" if nevra.get("epoch") else ""
    return Build.objects.create(
        project=project,
        project_dirname=dirname,
        package=package,
        submitter=user,
        source_type="rpm_upload",
        source_json={"pkg": nevra["filename"]},
        package_name=nevra["name"],
        package_version=f"{epoch}{nevra['version']}-{nevra['release']}",
        requested_chroots=[chroot.name for chroot in chroots],
        state=State.RUNNING,
        started_on=timezone.now(),
    )


def rpm_upload_task_create(build: Build, chroot: Chroot, filename: str, nevra: dict) -> BuildTask:
    now = timezone.now()
    return BuildTask.objects.create(
        build=build,
        chroot=chroot,
        state=State.RUNNING,
        priority=Priority.NORMAL,
        owner_key=build.project.ownername,
        result_dir=f"{chroot.name}/{build.pk:08d}-{build.package_name}",
        result_files=[filename],
        built_packages=[{k: nevra[k] for k in ("name", "epoch", "version", "release", "arch")}],
        started_on=now,
        heartbeat_on=now,
    )


@contextlib.contextmanager
def uploaded_rpm_read(upload) -> Iterator[tuple[Path, dict]]:
    """Save an uploaded binary RPM to a private temporary file and read its header.

    Yields (path, nevra + filename). Source RPMs and anything that is not an intact RPM
    are refused with a message, before any row is written.
    """
    filename = get_valid_filename(Path(upload.name).name)
    if not filename.endswith(".rpm") or filename.endswith(SOURCE_RPM_SUFFIXES):
        raise ServiceError(
            f"'{upload.name}' is not a binary RPM: uploadrpm takes a built .rpm; "
            "submit source RPMs with `copr-cli build`."
        )
    if upload.size > settings.MAX_SRPM_BYTES:
        raise ServiceError(f"'{upload.name}' is larger than {settings.MAX_SRPM_BYTES} bytes.")
    Path(settings.UPLOADS_ROOT).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=settings.UPLOADS_ROOT, prefix="rpm-") as directory:
        path = Path(directory) / filename
        with open(path, "wb") as target:
            for chunk in upload.chunks():
                target.write(chunk)
        try:
            nevra = read_rpm_nevra(path)
        except BadRpm as error:
            raise ServiceError(f"'{upload.name}' is not a usable RPM: {error}") from error
        if nevra["arch"] == "src":
            raise ServiceError(
                f"'{upload.name}' is a source RPM; uploadrpm publishes built binary RPMs only."
            )
        yield path, {**nevra, "filename": filename}


def rpm_upload_publish(*, tasks: list[BuildTask], rpm_path: Path) -> None:
    """Place an uploaded RPM in each task's results dir (Copr's layout), then sign and publish.

    Signing runs on the sign queue after commit, as for RPMs a builder made.
    """

    for task in tasks:
        build = task.build
        result_dir = project_results_dir(build.project.ownername, build.project_dirname)
        task_dir = result_dir / task.result_dir
        task_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rpm_path, task_dir / rpm_path.name)
        (task_dir / "results.json").write_text(json.dumps({"packages": task.built_packages}))
        (task_dir / "build.info").write_text(f"build_id={build.pk}\nuploaded=true\n")
        send_on_commit("publish_task", task.pk)
