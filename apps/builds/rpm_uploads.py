"""Publishing an already-built binary RPM (copr-cli `uploadrpm`): no source or RPM build runs.

The upload becomes a build with one task per matching chroot. The web role keeps the RPM
with the build's uploads; the backend fetches it (over HTTP when the roles run apart,
apps/builds/upload_links.py) and places it in each task's results directory as a builder
would leave it; signing and the repository follow as for built RPMs.
"""

import contextlib
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from django.utils.text import get_valid_filename

from apps.builds.lifecycle import build_refresh_state, task_end
from apps.builds.models import Build, BuildTask, Priority, State
from apps.builds.services import BuildOptions, checked_dirname, select_chroots
from apps.builds.sources import discard_upload, upload_dir
from apps.builds.upload_links import UploadFetchFailed, upload_fetch, upload_release
from apps.core.errors import PermissionDenied, ServiceError
from apps.core.paths import confined, project_results_dir
from apps.core.queue import send_on_commit
from apps.core.tempfiles import worker_temp_dir
from apps.packages.models import Package
from apps.projects.models import Chroot, Project
from apps.projects.permissions import can_build_in
from builders.srpm import BadRpm, read_rpm_nevra

logger = logging.getLogger(__name__)
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
    wait, `running`, until the backend has placed the RPM (`rpm_upload_place`) and it is
    signed and in the repository, like built ones.
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
        stored_upload_of = None
        committed = []
        try:
            with transaction.atomic():
                transaction.on_commit(lambda: committed.append(True))
                build = rpm_upload_build_create(user, project, dirname, nevra, matching)
                stored_upload_of = build.pk
                rpm_upload_store(build.pk, rpm_path)
                for chroot in matching:
                    rpm_upload_task_create(build, chroot, nevra)
                build_refresh_state(build_id=build.pk)
                send_on_commit("place_uploaded_rpm", build.pk)
        except BaseException:
            # As in build_submit: the rows are rolled back, the stored RPM goes with them.
            if stored_upload_of is not None and not committed:
                discard_upload(stored_upload_of)
            raise
    build.refresh_from_db()
    return build


def rpm_upload_store(build_id: int, rpm_path: Path) -> None:
    """Keep the RPM with the build's uploads (on the web role) until the backend placed it."""
    target = confined(settings.UPLOADS_ROOT, upload_dir(build_id).name, rpm_path.name)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(rpm_path, target)


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


def rpm_upload_task_create(build: Build, chroot: Chroot, nevra: dict) -> BuildTask:
    """A task that waits, `running` with no result files yet, for its RPM to be placed."""
    now = timezone.now()
    return BuildTask.objects.create(
        build=build,
        chroot=chroot,
        state=State.RUNNING,
        priority=Priority.NORMAL,
        owner_key=build.project.ownername,
        result_dir=f"{chroot.name}/{build.pk:08d}-{build.package_name}",
        result_files=[],
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


def tasks_awaiting_placing():
    """Tasks of uploaded RPMs whose RPM is not in their results directory yet."""
    return BuildTask.objects.filter(
        build__source_type="rpm_upload", state=State.RUNNING, result_files=[]
    )


def rpm_upload_place(*, build_id: int) -> None:
    """On the backend: fetch an uploaded RPM from the web role, place it in each waiting
    task's results dir (Copr's layout), and queue signing and publishing; then tell the web
    it may remove the upload. Tasks already placed are left alone (a repeated message).

    A web role that cannot be reached leaves the tasks waiting: reconcile sends this again
    (stale_tasks_reconcile). An RPM the web no longer has fails them.
    """
    build = Build.objects.select_related("project").filter(pk=build_id).first()
    tasks = list(tasks_awaiting_placing().filter(build_id=build_id))
    if build is None or not tasks:
        upload_release(build_id, build.web_host if build else "")
        return
    filename = build.source_json.get("pkg", "")
    inputs = worker_temp_dir("inputs")
    try:
        try:
            rpm_path = upload_fetch(build, filename, into=inputs)
        except UploadFetchFailed as error:
            logger.warning("build %s waits for its uploaded RPM: %s", build_id, error.message)
            return
        if rpm_path is None:
            reason = f"the uploaded RPM {filename} is gone from the web role"
            for task in tasks:
                task_end(task=task, state=State.FAILED, reason=reason)
        else:
            for task in tasks:
                rpm_upload_place_one(build, task, rpm_path)
        upload_release(build_id, build.web_host)
    finally:
        shutil.rmtree(inputs, ignore_errors=True)


def rpm_upload_place_one(build: Build, task: BuildTask, rpm_path: Path) -> None:
    """Signing runs on the sign queue after commit, as for RPMs a builder made."""
    result_dir = project_results_dir(build.project.ownername, build.project_dirname)
    task_dir = result_dir / task.result_dir
    task_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(rpm_path, task_dir / rpm_path.name)
    (task_dir / "results.json").write_text(json.dumps({"packages": task.built_packages}))
    (task_dir / "build.info").write_text(f"build_id={build.pk}\nuploaded=true\n")
    with transaction.atomic():
        # heartbeat_on: placed now, which the signing lease counts from.
        placed = tasks_awaiting_placing().filter(pk=task.pk)
        if placed.update(result_files=[rpm_path.name], heartbeat_on=timezone.now()):
            send_on_commit("publish_task", task.pk)
