"""apps/workflows/projects.py: a new project, and a chroot added later, get empty repository
metadata at once, through the repository runs the outbox sends after the commit."""

from pathlib import Path

import pytest

from apps.core.models import OutboxMessage
from apps.workflows.projects import project_create, project_edit
from tests.factories import UserFactory
from tests.queues import run_outbox_messages

pytestmark = pytest.mark.django_db
X86 = "fedora-43-x86_64"
I386 = "fedora-43-i386"


@pytest.fixture(autouse=True)
def isolated_storage(settings, tmp_path: Path) -> None:
    settings.RESULTS_ROOT = tmp_path / "results"
    settings.KEYS_ROOT = tmp_path / "keys"


def repomd(settings, project, chroot: str, *, devel: bool = False) -> Path:
    chroot_dir = Path(settings.RESULTS_ROOT) / project.ownername / project.name / chroot
    return chroot_dir / ("devel" if devel else "") / "repodata" / "repomd.xml"


def test_a_new_project_gets_empty_repodata_after_commit(settings):
    alice = UserFactory(username="alice")
    project = project_create(user=alice, ownername="alice", name="tools", chroot_names=[X86])
    # Asked for in the request's transaction, made by a worker: nothing written inline.
    assert not repomd(settings, project, X86).exists()
    assert OutboxMessage.objects.filter(actor_name="regenerate_repository").count() == 1
    assert run_outbox_messages("regenerate_repository") == 1
    assert "<repomd" in repomd(settings, project, X86).read_text()
    assert not repomd(settings, project, X86, devel=True).exists()


def test_a_devel_mode_project_gets_main_and_devel_repodata(settings):
    alice = UserFactory(username="alice")
    project = project_create(
        user=alice, ownername="alice", name="tools", chroot_names=[X86], devel_mode=True
    )
    run_outbox_messages("regenerate_repository")
    assert repomd(settings, project, X86).is_file()
    assert repomd(settings, project, X86, devel=True).is_file()


def test_a_chroot_added_later_gets_its_empty_repodata(settings):
    alice = UserFactory(username="alice")
    project = project_create(user=alice, ownername="alice", name="tools", chroot_names=[X86])
    OutboxMessage.objects.all().delete()
    project_edit(user=alice, project=project, description="same chroots")
    assert not OutboxMessage.objects.filter(actor_name="regenerate_repository").exists()
    project_edit(user=alice, project=project, chroot_names=[X86, I386])
    assert run_outbox_messages("regenerate_repository") == 1
    assert repomd(settings, project, I386).is_file()
    assert not repomd(settings, project, X86).exists()  # only the new chroot's run was asked
