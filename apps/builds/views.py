"""Build pages: the builds list with filters, one build with its tasks and logs, new builds."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, Http404, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from apps.builds import selectors
from apps.builds.forms import SOURCE_FORMS, ResubmitForm, SshResubmitForm
from apps.builds.logs import BACKEND_LOG, log_link_name
from apps.builds.models import FINAL_STATES, BuildTask, State
from apps.builds.services import (
    build_cancel,
    build_delete,
    build_delete_many,
    build_resubmit,
    build_submit,
    resubmittable,
    upload_discard_when_done,
    uploads_reconcile_now_and_then,
)
from apps.builds.ssh_access import build_ssh_release, can_use_ssh_access, ssh_access_state
from apps.builds.upload_links import (
    FETCH_SALT,
    RELEASE_SALT,
    UploadLinkRefused,
    link_read,
    stored_upload_path,
)
from apps.core.errors import ServiceError
from apps.core.paths import project_results_dir, results_url
from apps.packages.source_display import source_items
from apps.projects import permissions
from apps.projects.pages import (
    abilities,
    page_by_ids,
    project_or_404,
    projects_for_list,
    require,
    service_error,
)
from builders.livelog import LOG_NAME

BUILDS_PER_PAGE = 50
DEFAULT_SOURCE_TYPE = "upload"


@require_safe
def build_list(request, owner: str, project: str):
    """A project's builds, newest first, filtered by state, package and chroot."""
    found = project_or_404(owner, project)
    return render(request, "builds/list.html", build_list_context(request, found))


def build_list_context(request, found, error: str | None = None) -> dict:
    filters = {key: request.GET.get(key, "").strip() for key in ("state", "package", "chroot")}
    if filters["state"] not in ("", *State.values):
        filters["state"] = ""
    builds = selectors.project_builds(found, **filters)
    page = page_by_ids(request, builds, BUILDS_PER_PAGE, read=selectors.build_rows)
    return {
        "project": found,
        "page": page,
        "filters": filters,
        "states": State.values,
        "chroot_names": [pc.chroot.name for pc in found.project_chroots.select_related("chroot")],
        "query": query_without_page(request),
        "error": error,
        **abilities(request.user, found),
    }


def query_without_page(request) -> str:
    """The current filters as a query string, for the pagination links."""
    query = request.GET.copy()
    query.pop("page", None)
    return query.urlencode()


@require_safe
def build_detail(request, build_id: int, owner: str | None = None, project: str | None = None):
    """One row per task, the failure reasons on top; `?partial=status` is the live part."""
    build = selectors.build_with_tasks(build_id)
    if build is None:
        raise Http404(f"Build {build_id} does not exist.")
    if owner is not None and (build.project.ownername, build.project.name) != (owner, project):
        raise Http404(f"Build {build_id} is not in {owner}/{project}.")
    template = "builds/_status.html" if request.GET.get("partial") == "status" else None
    return render(request, template or "builds/detail.html", build_page_context(request, build))


def build_page_context(request, build, error: str | None = None) -> dict:
    return {
        "build": build,
        "project": build.project,
        "tasks": [task_row(build, task) for task in build.tasks.all()],
        "built_rpms": built_rpms(build, build.tasks.all()),
        "failure_reasons": selectors.failure_reasons(build),
        "finished": build.state in FINAL_STATES,
        "error": error,
        "srpm_url": results_url(build.srpm_url) if build.srpm_url else None,
        "srpm_name": build.srpm_url.rsplit("/", 1)[-1],
        "source_items": source_items(build.source_json, commit=build.source_commit),
        "resubmittable": resubmittable(build),
        **ssh_access_context(request.user, build),
        **abilities(request.user, build.project),
    }


def built_rpms(build, tasks) -> list[dict]:
    """Each binary RPM of the succeeded tasks as name-version-release.arch, linked to its file."""
    rpms = []
    for task in tasks:
        if task.state != State.SUCCEEDED or task.chroot_id is None:
            continue
        base = results_url(f"{build.project.ownername}/{build.project_dirname}/{task.result_dir}/")
        files = {name.rsplit("/", 1)[-1] for name in task.result_files}
        for package in task.built_packages:
            if package.get("arch") == "src":
                continue
            nvra = "{name}-{version}-{release}.{arch}".format(**package)
            epoch = f"{package['epoch']}:" if package.get("epoch") else ""
            rpms.append(
                {
                    "label": f"{package['name']}-{epoch}{package['version']}-{package['release']}"
                    f".{package['arch']}",
                    "url": base + f"{nvra}.rpm" if f"{nvra}.rpm" in files else None,
                    "chroot": task.chroot.name,
                }
            )
    return rpms


def task_row(build, task: BuildTask) -> dict:
    """What the build page shows of a task: its state, times, and links into the results."""
    started = task.started_on is not None
    base = results_url(f"{build.project.ownername}/{build.project_dirname}/{task.result_dir}/")
    return {
        "task": task,
        "label": selectors.task_label(task),
        "finished": task.state in FINAL_STATES,
        "results_url": base if started else None,
        "live_log_url": base + log_link_name(task, LOG_NAME) if started else None,
        "backend_log_url": base + log_link_name(task, BACKEND_LOG) if started else None,
        "duration": duration(task),
        "attempts": [
            {"attempt": attempt, "duration": duration(attempt)} for attempt in task.attempts.all()
        ],
    }


def duration(run) -> str:
    """How long a task (or one attempt of it) took, once it ended."""
    if not run.started_on or not run.ended_on:
        return ""
    seconds = int((run.ended_on - run.started_on).total_seconds())
    return f"{seconds // 60} min {seconds % 60} s" if seconds >= 60 else f"{seconds} s"


@require_safe
def build_live_log(request, build_id: int, task_id: int):
    """A page that follows one task's builder-live.log while the task runs."""
    build = selectors.build_with_tasks(build_id)
    task = next((t for t in build.tasks.all() if t.pk == task_id), None) if build else None
    if task is None:
        raise Http404("No such task.")
    row = task_row(build, task)
    # The result dir is known before the task starts: the page waits for the log to appear.
    row["follow_url"] = results_url(
        f"{build.project.ownername}/{build.project_dirname}/{task.result_dir}/{LOG_NAME}"
    )
    context = {"build": build, "project": build.project, "row": row}
    context.update(abilities(request.user, build.project))
    return render(request, "builds/live_log.html", context)


@require_safe
def build_state(request, build_id: int):
    """States of a build and its tasks as JSON, for the live log page's polling."""
    build = build_or_404(build_id)
    tasks = list(build.tasks.all())
    return JsonResponse(
        {
            "state": build.state,
            "finished": build.is_finished,
            "tasks": {str(task.pk): task.state for task in tasks},
            # The live log page asks for bytes only when there are new ones: a Range request
            # past the end (416) or for a log not written yet (404) is an error in the console.
            "log_sizes": live_log_sizes(build, tasks),
        }
    )


def live_log_sizes(build, tasks) -> dict | None:
    """Bytes of each task's builder-live.log so far, when this host holds the results; None
    when they are served from elsewhere (RESULTS_URL), where the page asks for new bytes itself."""
    if settings.RESULTS_URL:
        return None
    return {str(task.pk): live_log_size(build, task) for task in tasks}


def live_log_size(build, task: BuildTask) -> int | None:
    """Bytes of the task's builder-live.log so far; None before the runner creates it."""
    if task.started_on is None or not task.result_dir:
        return None
    directory = project_results_dir(build.project.ownername, build.project_dirname)
    try:
        return (directory / task.result_dir / LOG_NAME).stat().st_size
    except OSError:
        return None


@login_required
@require_http_methods(["GET", "POST"])
def build_new(request, owner: str, project: str, source_type: str = DEFAULT_SOURCE_TYPE):
    """The new-build form of one source type; tabs lead to the other types."""
    found = project_or_404(owner, project)
    form_class = SOURCE_FORMS.get(source_type)
    if form_class is None:
        raise Http404(f"Unknown source type {source_type}.")
    require(
        permissions.can_build_in(request.user, found), f"You cannot build in {found.full_name}."
    )
    found = project_with_chroots(found)
    form = form_class(request.POST or None, request.FILES or None, project=found)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                build = build_submit(user=request.user, project=found, **form.submit_arguments())
            except ServiceError as error:
                status = service_error(form, error)
            else:
                return redirect("build-detail", build.pk)
    context = {
        "project": found,
        "form": form,
        "source_types": [(name, cls.title) for name, cls in SOURCE_FORMS.items()],
        "source_type": source_type,
        **abilities(request.user, found),
    }
    return render(request, "builds/new.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def build_resubmit_view(request, build_id: int, ssh: bool = False):
    """Copr's resubmit: the build's source again, with the chroots and options asked for;
    with `ssh`, Copr's "resubmit with SSH" (apps/builds/ssh_access.py)."""
    build = build_or_404(build_id)
    require(
        permissions.can_build_in(request.user, build.project),
        f"You cannot build in {build.project.full_name}.",
    )
    # Bound on every POST: one with no option changed is still a resubmit.
    form_class = SshResubmitForm if ssh else ResubmitForm
    form = form_class(request.POST if request.method == "POST" else None, build=build)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                resubmitted = build_resubmit(user=request.user, build=build, options=form.options())
            except ServiceError as error:
                status = service_error(form, error)
            else:
                return redirect("build-detail", resubmitted.pk)
    context = {"build": build, "project": build.project, "form": form, "ssh": ssh}
    context.update(abilities(request.user, build.project))
    return render(request, "builds/resubmit.html", context, status=status)


@login_required
@require_POST
def build_ssh_destroy_view(request, build_id: int):
    """Destroy the machine kept for a build's SSH access before it expires."""
    build = build_or_404(build_id)
    try:
        build_ssh_release(user=request.user, build=build)
    except ServiceError as error:
        build = selectors.build_with_tasks(build_id)
        context = build_page_context(request, build, error=error.message)
        return render(request, "builds/detail.html", context, status=error.status)
    return redirect("build-detail", build.pk)


def ssh_access_context(user, build) -> dict:
    """What the build page says of its SSH access: to its submitter (and staff) only."""
    if not build.with_ssh_access or not can_use_ssh_access(user, build):
        return {"ssh_access": None}
    return {"ssh_access": ssh_access_state(build)}


def project_with_chroots(project):
    return projects_for_list().get(pk=project.pk)


@login_required
@require_POST
def build_cancel_view(request, build_id: int):
    build = build_or_404(build_id)
    cancel = lambda: build_cancel(user=request.user, build=build)  # noqa: E731
    return after_write(request, build, cancel, reverse("build-detail", args=[build.pk]))


@login_required
@require_POST
def build_delete_view(request, build_id: int):
    build = build_or_404(build_id)
    remove = lambda: build_delete(user=request.user, build=build)  # noqa: E731
    project = build.project
    return after_write(
        request, build, remove, reverse("build-list", args=[project.ownername, project.name])
    )


@login_required
@require_POST
def build_delete_many_view(request, owner: str, project: str):
    """The builds list's "Delete selected": all of them or, if one cannot go, none."""
    found = project_or_404(owner, project)
    require(
        permissions.can_edit(request.user, found),
        f"You are not allowed to delete builds of {found.full_name}.",
    )
    try:
        build_ids = list(dict.fromkeys(int(value) for value in request.POST.getlist("build_ids")))
        build_delete_many(user=request.user, project=found, build_ids=build_ids)
    except ValueError:
        error = ServiceError("Build ids are numbers.")
    except ServiceError as refused:
        error = refused
    else:
        return redirect("build-list", found.ownername, found.name)
    context = build_list_context(request, found, error=error.message)
    return render(request, "builds/list.html", context, status=error.status)


def build_or_404(build_id: int):
    build = selectors.build_with_tasks(build_id)
    if build is None:
        raise Http404(f"Build {build_id} does not exist.")
    return build


def after_write(request, build, write, next_url: str):
    """Run a build service; a refusal re-renders the build page with its message."""
    try:
        write()
    except ServiceError as error:
        context = build_page_context(request, build, error=error.message)
        return render(request, "builds/detail.html", context, status=error.status)
    return redirect(next_url)


# --- uploads handed to the backend (apps/builds/upload_links.py) --------------------------

TEXT_PLAIN = "text/plain; charset=utf-8"


@require_safe
def upload_fetch(request, token: str):
    """One build's stored file, for the backend that holds a signed, unexpired link to it."""
    try:
        build_id, name = link_read(token, salt=FETCH_SALT)
    except UploadLinkRefused as error:
        return HttpResponse(error.message + "\n", status=error.status, content_type=TEXT_PLAIN)
    path = stored_upload_path(build_id, name)
    if path is None:
        message = (
            f"Build {build_id} has no stored file {name}: its source task has ended, or the "
            "build was deleted.\n"
        )
        return HttpResponse(message, status=404, content_type=TEXT_PLAIN)
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)


@csrf_exempt  # called by the backend, not a browser; the signed link is the credential
@require_POST
def upload_release(request, token: str):
    """The backend's word that a build's source task has ended: remove its upload here."""
    try:
        build_id, _ = link_read(token, salt=RELEASE_SALT)
    except UploadLinkRefused as error:
        return HttpResponse(error.message + "\n", status=error.status, content_type=TEXT_PLAIN)
    removed = upload_discard_when_done(build_id=build_id)
    uploads_reconcile_now_and_then()
    if not removed:
        message = f"The source task of build {build_id} still runs; its upload stays.\n"
        return HttpResponse(message, status=409, content_type=TEXT_PLAIN)
    return HttpResponse(status=204)
