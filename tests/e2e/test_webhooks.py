"""Webhooks over HTTP against the live server, rebuilding from a local git daemon for real."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
import requests

from apps.builds.execution import task_result_dir
from apps.builds.logs import read_log
from apps.builds.models import Build, BuildTask, State
from apps.packages.models import WebhookHistory
from apps.packages.services import WEBHOOK_ANONYMOUS_KEPT, package_add
from tests.builders.scm_helpers import commit, git, make_repo, packed_files
from tests.e2e.conftest import finished_build

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def layered_repo(git_daemon):
    """Two packages in one repository, each in its own subdirectory."""
    files = {}
    for name in ("alpha", "beta"):
        files.update({f"{name}/{path}": text for path, text in packed_files(name).items()})
    return make_repo(git_daemon.base / "layered", files)


def add_scm(project, name, url, **source):
    return package_add(
        user=project.owner_user,
        project=project,
        name=name,
        source_type="scm",
        source_json={"clone_url": url, **source},
        webhook_rebuild=True,
    )


def source_log(build: Build) -> str:
    task = BuildTask.objects.get(build=build, chroot=None)
    return read_log(task_result_dir(task), "builder-live.log")


def github_post(live_server, project, payload, *, secret=None, event="push"):
    body = json.dumps(payload).encode()
    key = str(secret or project.webhook_secret).encode()
    return requests.post(
        f"{live_server.url}/webhooks/github/{project.pk}/{project.webhook_secret}/",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": "delivery-1",
            "X-Hub-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest(),
        },
        timeout=60,
    )


def only_x86(project):
    project.chroots.remove(*project.chroots.exclude(name="fedora-43-x86_64"))


def test_github_push_and_tag_rebuild_the_touched_package(
    live_server, worker, packager, git_daemon, layered_repo
):
    _, _, project = packager
    only_x86(project)
    url = git_daemon.url("layered")
    add_scm(project, "alpha", url, subdirectory="alpha")
    add_scm(project, "beta", url, subdirectory="beta")
    after = commit(
        layered_repo,
        {f"alpha/{p}": t for p, t in packed_files("alpha", "1.1").items()},
        message="alpha 1.1",
    )
    push = {
        "ref": "refs/heads/main",
        "after": after,
        "repository": {"clone_url": url + ".git"},
        "sender": {"html_url": "https://github.example/alice"},
        "commits": [{"added": [], "modified": ["alpha/alpha.spec"], "removed": []}],
    }

    refused = github_post(live_server, project, push, secret="not-the-secret")
    assert refused.status_code == 403
    assert not Build.objects.exists()

    accepted = github_post(live_server, project, push)
    assert (accepted.status_code, accepted.text) == (200, "OK\n")
    build = finished_build(Build.objects.get().pk, timeout=180)
    assert (build.state, build.package.name, build.package_version) == (
        State.SUCCEEDED,
        "alpha",
        "1.1-1",
    )
    assert build.is_background and build.submitter is None
    assert f"Checked out {after}" in source_log(build)

    git(layered_repo, "tag", "beta-2.0")
    tag = {"ref": "refs/tags/beta-2.0", "repository": {"clone_url": url}, "commits": []}
    assert github_post(live_server, project, tag).status_code == 200
    tagged = finished_build(Build.objects.get(package__name="beta").pk, timeout=180)
    assert tagged.state == State.SUCCEEDED
    assert tagged.source_json["committish"] == "beta-2.0"

    outcomes = list(WebhookHistory.objects.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == [
        "rejected (403): bad X-Hub-Signature-256 signature",
        f"alpha: build {build.pk}",
        f"beta: build {tagged.pk}",
    ]


def test_gitlab_token_and_custom_webhook(live_server, worker, packager, git_daemon, layered_repo):
    _, _, project = packager
    only_x86(project)
    url = git_daemon.url("layered")
    add_scm(project, "beta", url, subdirectory="beta")
    script = (
        "#!/bin/sh\nset -e\n"
        'echo "payload: $(cat "$COPR_HOOK_PAYLOAD") for $COPR_OWNER/$COPR_PROJECT/$COPR_PACKAGE"\n'
    )
    hooked_spec = packed_files("hooked")["hooked.spec"]
    script += f"cat > hooked.spec <<'SPEC'\n{hooked_spec}SPEC\necho hi > hello.txt\n"
    package_add(
        user=project.owner_user,
        project=project,
        name="hooked",
        source_type="custom",
        source_json={"script": script, "chroot": "fedora-43-x86_64"},
    )
    gitlab = {
        "object_kind": "push",
        "ref": "refs/heads/main",
        "after": git(layered_repo, "rev-parse", "HEAD"),
        "user_username": "bob",
        "project": {"git_http_url": url},
        "commits": [{"added": ["beta/new-file"], "modified": [], "removed": []}],
    }
    gitlab_url = f"{live_server.url}/webhooks/gitlab/{project.pk}/{project.webhook_secret}/"
    headers = {"X-Gitlab-Event": "Push Hook", "X-Gitlab-Webhook-UUID": "gl-1"}
    wrong = requests.post(
        gitlab_url, json=gitlab, headers={**headers, "X-Gitlab-Token": "nope"}, timeout=60
    )
    assert wrong.status_code == 403
    right = requests.post(
        gitlab_url,
        json=gitlab,
        headers={**headers, "X-Gitlab-Token": str(project.webhook_secret)},
        timeout=60,
    )
    assert right.status_code == 200
    custom = requests.post(
        f"{live_server.url}/webhooks/custom/{project.pk}/{project.webhook_secret}/hooked/",
        data=b"hello-from-ci",
        timeout=60,
    )
    assert custom.status_code == 200
    custom_build = finished_build(int(custom.text), timeout=180)
    gitlab_build = finished_build(Build.objects.get(package__name="beta").pk, timeout=180)
    assert (gitlab_build.state, gitlab_build.submitted_by) == (State.SUCCEEDED, "gitlab.com:bob")
    assert custom_build.state == State.SUCCEEDED
    assert "payload: hello-from-ci for packager/tools/hooked" in source_log(custom_build)
    assert (
        not Path(task_result_dir(BuildTask.objects.get(build=custom_build, chroot=None)))
        .joinpath("hook_payload")
        .exists()
    )
    providers = list(WebhookHistory.objects.order_by("pk").values_list("provider", "webhook_uuid"))
    assert providers == [("gitlab", "gl-1"), ("gitlab", "gl-1"), ("custom", "")]


def test_wrong_secret_flood_leaves_a_bounded_history(live_server, e2e_settings, packager):
    """200 POSTs with a wrong secret, over HTTP, to a project and to the ids around it."""
    _, _, project = packager
    genuine = github_post(live_server, project, {"zen": "hi"}, event="ping")
    assert genuine.status_code == 200
    with requests.Session() as session:
        for number in range(200):
            copr_id = project.pk + number % 3  # the next ids do not exist
            response = session.post(
                f"{live_server.url}/webhooks/github/{copr_id}/guessed-{number}/",
                data=b"{}",
                headers={"Content-Type": "application/json", "X-GitHub-Event": "push"},
                timeout=30,
            )
            assert response.status_code in (403, 404)

    assert WebhookHistory.objects.count() == 1 + WEBHOOK_ANONYMOUS_KEPT
    assert WebhookHistory.objects.filter(outcome="ping").count() == 1
