"""The background operations coprsite runs, as Copr's actions (specs/copr-compat.md §3.11),
for /backend/pending-action(s)/, /backend/pending-action-count/ and /backend/action/<id>/.

coprsite keeps no Action table: each waiting action is read from the row it stands for (a
repository behind its requests, a signing key to make, a fork's uncopied builds, a results
removal still in the outbox). Its id is that row's id times ID_KINDS plus the kind's digit,
so ids are integers as Copr's backend expects (it sorts and fetches by them), unique across
kinds, and /backend/action/<id>/ finds the row again.
"""

import json
from collections import defaultdict
from collections.abc import Callable, Iterator

from django.conf import settings

from apps.builds import selectors as build_selectors
from apps.core.models import OutboxMessage
from apps.projects.models import Project
from apps.repos import selectors as repo_selectors

# Copr's ActionTypeEnum values, and DefaultActionPriorityEnum (lower runs sooner).
DELETE, CREATEREPO, GEN_GPG_KEY, FORK = 0, 3, 5, 7
PRIORITY = {GEN_GPG_KEY: -70, CREATEREPO: 0, FORK: 0, DELETE: 60}
WAITING = 0  # Copr's BackendResultEnum("waiting")
ID_KINDS = 10
# Kind digits of the ids; removals use the outbox message's id.
KIND_CREATEREPO, KIND_GEN_GPG_KEY, KIND_FORK, KIND_DELETE = 1, 2, 3, 4
DELETE_ACTORS = ("remove_project_results", "remove_build_results")


def action(kind: int, row_id: int, action_type: int, owner: str, **columns) -> dict:
    """One action with all of Copr's columns; `project_owner` is for pending-actions only."""
    record = {
        "id": row_id * ID_KINDS + kind,
        "action_type": action_type,
        "object_type": None,
        "object_id": None,
        "old_value": None,
        "new_value": None,
        "data": None,
        "priority": PRIORITY[action_type],
        "result": WAITING,
        "message": None,
        "created_on": None,
        "ended_on": None,
        "project_owner": owner,
        **columns,
    }
    if record["data"] is not None:
        record["data"] = json.dumps(record["data"])  # Copr keeps data as JSON text
    return record


def timestamp(moment) -> int | None:
    return int(moment.timestamp()) if moment else None


def storage() -> str:
    return "pulp" if settings.REPOSITORY_STORE == "pulp" else "backend"


def createrepo_actions(row_id: int | None = None) -> Iterator[dict]:
    repositories = repo_selectors.repositories_awaiting_run()
    if row_id is not None:
        repositories = repositories.filter(pk=row_id)
    for repository in repositories:
        project = repository.project
        # Devel-mode runs reach only devel/ unless a request asked for the main repodata.
        devel = (
            project.devel_mode and repository.main_requested_serial <= repository.published_serial
        )
        yield action(
            KIND_CREATEREPO, repository.pk, CREATEREPO, project.ownername,
            object_type="repository", object_id=repository.pk,
            data={
                "ownername": project.ownername, "projectname": project.name,
                "project_dirnames": [repository.project_dirname],
                "chroots": [repository.chroot.name], "appstream": project.appstream,
                "devel": devel, "storage": storage(),
            },
        )  # fmt: skip


def gen_gpg_key_actions(row_id: int | None = None) -> Iterator[dict]:
    keys = repo_selectors.signing_keys_pending()
    if row_id is not None:
        keys = keys.filter(pk=row_id)
    for key in keys:
        project = key.project
        yield action(
            KIND_GEN_GPG_KEY, key.pk, GEN_GPG_KEY, project.ownername,
            object_type="copr", object_id=project.pk, created_on=timestamp(key.created_on),
            data={"ownername": project.ownername, "projectname": project.name},
        )  # fmt: skip


def fork_actions(row_id: int | None = None) -> Iterator[dict]:
    """One fork action per fork whose builds wait to be copied, with Copr's builds_map."""
    tasks = build_selectors.forked_tasks_uncopied()
    if row_id is not None:
        tasks = tasks.filter(build__project_id=row_id)
    by_fork = defaultdict(list)
    for task in tasks:
        by_fork[task.build.project_id].append(task)
    for fork_tasks in by_fork.values():
        fork: Project = fork_tasks[0].build.project
        builds_map = defaultdict(dict)
        sources = set()
        for task in fork_tasks:
            original = task.forked_from
            if original is not None:
                sources.add(original.build.project.full_name)
                old_dir = original.result_dir.rsplit("/", 1)[-1]
                builds_map[task.chroot.name][old_dir] = task.result_dir.rsplit("/", 1)[-1]
        yield action(
            KIND_FORK, fork.pk, FORK, fork.ownername,
            object_type="copr", object_id=fork.pk,
            old_value=", ".join(sorted(sources)) or None, new_value=fork.full_name,
            created_on=timestamp(min(task.queued_on for task in fork_tasks)),
            data={
                "user": fork.ownername, "copr": fork.name,
                "builds_map": builds_map, "storage": storage(),
            },
        )  # fmt: skip


def delete_actions(row_id: int | None = None) -> Iterator[dict]:
    """Results removals still in the outbox (the broker has the others, out of sight)."""
    messages = OutboxMessage.objects.filter(actor_name__in=DELETE_ACTORS)
    if row_id is not None:
        messages = messages.filter(pk=row_id)
    for message in messages:
        args = dict(zip(removal_parameters(message.actor_name), message.args, strict=False))
        args.update(message.kwargs)
        ownername = args.get("ownername", "")
        if message.actor_name == "remove_project_results":
            columns = {"object_type": "copr", "data": {
                "ownername": ownername, "project_dirnames": args.get("dirnames", []),
            }}  # fmt: skip
        else:
            columns = {"object_type": "build", "object_id": args.get("project_id"), "data": {
                "ownername": ownername, "project_dirname": args.get("project_dirname"),
                "result_dirs": args.get("result_dirs", []),
            }}  # fmt: skip
        columns["data"]["storage"] = storage()
        yield action(
            KIND_DELETE, message.pk, DELETE, ownername,
            created_on=timestamp(message.created_on), **columns,
        )  # fmt: skip


def removal_parameters(actor_name: str) -> tuple[str, ...]:
    if actor_name == "remove_project_results":
        return ("ownername", "dirnames")
    return ("project_id", "ownername", "project_dirname", "result_dirs", "chroot_ids")


SOURCES: dict[int, Callable[..., Iterator[dict]]] = {
    KIND_CREATEREPO: createrepo_actions,
    KIND_GEN_GPG_KEY: gen_gpg_key_actions,
    KIND_FORK: fork_actions,
    KIND_DELETE: delete_actions,
}


def waiting_actions() -> list[dict]:
    """Every waiting action, in the order Copr's backend takes them: priority, then id."""
    actions = [record for source in SOURCES.values() for record in source()]
    return sorted(actions, key=lambda record: (record["priority"], record["id"]))


def action_by_id(action_id: int) -> dict | None:
    """The waiting action of that id, or None (done already, or never was)."""
    source = SOURCES.get(action_id % ID_KINDS)
    if source is None:
        return None
    return next(source(action_id // ID_KINDS), None)


def without_owner(record: dict) -> dict:
    """The action as Copr's Action.to_dict gives it: its columns only."""
    return {key: value for key, value in record.items() if key != "project_owner"}
