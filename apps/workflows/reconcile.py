"""The reconcile tick: each job is a function of the app it belongs to, run here in order."""

from apps.builds.scheduler import explain_waiting_tasks
from apps.builds.services import machines_reconcile_send, stale_tasks_reconcile, uploads_reconcile
from apps.builds.workspaces import workspaces_sweep
from apps.core.queue import send_on_commit
from apps.core.tempfiles import worker_temp_sweep
from apps.fleet.health import builders_to_probe
from apps.fleet.services import pools_sync
from apps.repos.services import forked_copies_reconcile, repositories_reconcile


def reconcile_all() -> dict:
    """Return tasks of dead workers to the queue, and re-nudge work that waits too long.

    Every worker's ticker sends this (apps.core.ticker); each job is idempotent, so several
    workers running it at once is harmless.
    """
    counts = stale_tasks_reconcile()
    workspaces_sweep()
    uploads_reconcile()
    worker_temp_sweep()
    counts["repositories"] = repositories_reconcile()
    forked_copies_reconcile()
    pools_sync()  # builders for hosts an operator added to an ssh pool's config
    machines_reconcile_send()
    for builder_id in builders_to_probe().values_list("pk", flat=True):
        send_on_commit("probe_builder", builder_id)
    explain_waiting_tasks()
    send_on_commit("schedule_tasks")
    return counts
