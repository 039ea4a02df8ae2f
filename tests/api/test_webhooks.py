"""Webhook endpoints: authentication, Copr's package matching, background builds, history."""

import hashlib
import hmac
import json

import pytest

from apps.builds.models import Build
from apps.packages import services
from apps.packages.models import WebhookHistory
from apps.packages.services import package_add
from tests.factories import ProjectFactory

pytestmark = pytest.mark.django_db
REPO = "https://forge.example.org/team/tools"


@pytest.fixture
def project():
    return ProjectFactory(name="tools")


def add(project, name, **source):
    return package_add(
        user=project.owner_user,
        project=project,
        name=name,
        source_type="scm",
        source_json={"clone_url": REPO + ".git", **source},
        webhook_rebuild=True,
    )


def github_payload(*files, ref="refs/heads/main", after="a" * 40):
    return {
        "ref": ref,
        "after": after,
        "repository": {"clone_url": REPO + ".git", "html_url": REPO},
        "sender": {"html_url": "https://forge.example.org/alice"},
        "commits": [{"added": list(files), "modified": [], "removed": []}],
    }


def post_github(client, project, payload, *, event="push", secret=None, pkg=""):
    body = json.dumps(payload).encode()
    key = str(secret or project.webhook_secret).encode()
    signature = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
    suffix = f"{pkg}/" if pkg else ""
    return client.post(
        f"/webhooks/github/{project.pk}/{project.webhook_secret}/{suffix}",
        body,
        content_type="application/json",
        headers={"X-GitHub-Event": event, "X-Hub-Signature-256": signature},
    )


def test_github_push_rebuilds_only_touched_packages(client, project):
    add(project, "one", subdirectory="one")
    add(project, "two", subdirectory="two")
    add(project, "elsewhere", subdirectory="one", committish="stable")

    response = post_github(client, project, github_payload("one/file.c"))

    assert response.status_code == 200
    build = Build.objects.get()
    assert (build.package.name, build.is_background, build.submitter) == ("one", True, None)
    assert build.submitted_by == "https://forge.example.org/alice"
    assert build.source_json["committish"] == "a" * 40
    history = WebhookHistory.objects.get()
    assert (history.provider, history.event) == ("github", "push")
    assert history.outcome == f"one: build {build.pk}"


def test_github_bad_signature_is_refused_and_builds_nothing(client, project):
    add(project, "one")
    response = post_github(client, project, github_payload("x"), secret="wrong")
    assert response.status_code == 403
    assert not Build.objects.exists()
    assert WebhookHistory.objects.get().outcome.startswith("rejected (403)")


def test_wrong_secret_in_the_url_is_refused(client, project):
    add(project, "one")
    response = client.post(
        f"/webhooks/github/{project.pk}/not-the-secret/",
        "{}",
        content_type="application/json",
        headers={"X-GitHub-Event": "push"},
    )
    assert response.status_code == 403
    assert client.post("/webhooks/github/99999/x/", "{}", content_type="x").status_code == 404


def test_github_tag_matches_by_name_and_version(client, project):
    add(project, "one")
    add(project, "two")
    payload = github_payload(ref="refs/tags/two-1.2-3")
    payload["commits"] = []
    post_github(client, project, payload)
    build = Build.objects.get()
    assert (build.package.name, build.source_json["committish"]) == ("two", "two-1.2-3")


def test_tag_with_package_in_the_url(client, project):
    add(project, "one")
    add(project, "two")
    post_github(client, project, {**github_payload(), "ref": "refs/tags/v9"}, pkg="one")
    assert [b.package.name for b in Build.objects.all()] == ["one"]


def test_ping_and_packages_without_auto_rebuild(client, project):
    package = add(project, "one")
    assert post_github(client, project, {"zen": "hi"}, event="ping").status_code == 200
    package.webhook_rebuild = False
    package.save()
    post_github(client, project, github_payload("x"))
    assert not Build.objects.exists()
    assert [h.outcome for h in WebhookHistory.objects.order_by("pk")] == [
        "ping",
        "no package matches refs/heads/main",
    ]


def gitlab_payload(kind="push", ref="refs/heads/main"):
    return {
        "object_kind": kind,
        "ref": ref,
        "after": "b" * 40,
        "user_username": "bob",
        "project": {"git_http_url": REPO + ".git", "web_url": REPO},
        "commits": [{"added": [], "modified": ["README"], "removed": []}],
    }


def post_gitlab(client, project, payload, token):
    return client.post(
        f"/webhooks/gitlab/{project.pk}/{project.webhook_secret}",
        json.dumps(payload),
        content_type="application/json",
        headers={"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": token},
    )


def test_gitlab_token(client, project):
    add(project, "one")
    assert post_gitlab(client, project, gitlab_payload(), "wrong").status_code == 403
    assert not Build.objects.exists()
    assert (
        post_gitlab(client, project, gitlab_payload(), str(project.webhook_secret)).status_code
        == 200
    )
    build = Build.objects.get()
    assert (build.submitted_by, build.source_json["committish"]) == ("gitlab.com:bob", "b" * 40)


def test_gitlab_tag_push(client, project):
    add(project, "one")
    payload = gitlab_payload(kind="tag_push", ref="refs/tags/one-2.0")
    post_gitlab(client, project, payload, str(project.webhook_secret))
    assert Build.objects.get().source_json["committish"] == "one-2.0"


def test_bitbucket_and_pagure(client, project):
    add(project, "one", committish="main")
    bitbucket = {
        "repository": {"links": {"html": {"href": REPO}}},
        "push": {"changes": [{"new": {"type": "tag", "name": "one-1.0", "target": {}}}]},
        "actor": {"links": {"html": {"href": "https://bitbucket.org/carol"}}},
    }
    url = f"/webhooks/bitbucket/{project.pk}/{project.webhook_secret}/"
    assert (
        client.post(url, json.dumps(bitbucket), content_type="application/json").status_code == 200
    )
    pagure = {
        "topic": "io.pagure.prod.pagure.git.receive",
        "msg": {"repo": {"full_url": REPO}, "branch": "main", "end_commit": "c" * 40},
    }
    url = f"/webhooks/pagure/{project.pk}/{project.webhook_secret}/"
    assert client.post(url, json.dumps(pagure), content_type="application/json").status_code == 200
    assert [b.source_json["committish"] for b in Build.objects.order_by("pk")] == [
        "one-1.0",
        "c" * 40,
    ]


def test_custom_webhook_builds_and_answers_the_build_id(client, project, settings, tmp_path):
    settings.UPLOADS_ROOT = tmp_path
    package_add(
        user=project.owner_user,
        project=project,
        name="scripted",
        source_type="custom",
        source_json={"script": "#!/bin/sh\ntrue\n", "chroot": "fedora-43-x86_64"},
    )
    url = f"/webhooks/custom/{project.pk}/{project.webhook_secret}/scripted/"
    response = client.post(url, b"payload!", content_type="text/plain")
    build = Build.objects.get()
    assert response.content.decode() == f"{build.pk}\n"
    assert build.is_background and build.source_json["hook_data"] is True
    assert (tmp_path / f"{build.pk:08d}" / "hook_payload").read_bytes() == b"payload!"
    missing = client.post(url.replace("scripted", "nope"), b"", content_type="text/plain")
    assert missing.status_code == 404


def wrong_secret_post(client, project_id: int):
    return client.post(
        f"/webhooks/github/{project_id}/not-the-secret/",
        "{}",
        content_type="application/json",
        headers={"X-GitHub-Event": "push", "X-GitHub-Delivery": "guess"},
    )


def test_wrong_secret_calls_keep_a_small_bounded_history(client, project):
    """200 anonymous POSTs leave at most the bound, and push no real delivery out."""
    add(project, "one")
    assert post_github(client, project, {}, event="ping").status_code == 200

    for _ in range(200):
        assert wrong_secret_post(client, project.pk).status_code == 403

    rows = WebhookHistory.objects.filter(project=project)
    anonymous = rows.filter(outcome=services.ANONYMOUS_CALL_OUTCOME)
    assert anonymous.count() == services.WEBHOOK_ANONYMOUS_KEPT
    assert list(rows.exclude(pk__in=anonymous).values_list("outcome", flat=True)) == ["ping"]
    # The newest are the ones kept.
    assert anonymous.order_by("pk").last().pk == rows.order_by("pk").last().pk


def test_history_keeps_the_newest_deliveries_per_project(client, project, monkeypatch):
    monkeypatch.setattr(services, "WEBHOOK_HISTORY_PER_PROJECT", 5)
    other = ProjectFactory(name="other")
    post_github(client, other, {}, event="ping")
    for number in range(8):
        payload = {"zen": number}
        response = client.post(
            f"/webhooks/github/{project.pk}/{project.webhook_secret}/",
            json.dumps(payload),
            content_type="application/json",
            headers={"X-GitHub-Event": "ping", "X-GitHub-Delivery": f"delivery-{number}"},
        )
        assert response.status_code == 200

    kept = WebhookHistory.objects.filter(project=project).order_by("pk")
    assert list(kept.values_list("webhook_uuid", flat=True)) == [
        f"delivery-{number}" for number in range(3, 8)
    ]
    assert WebhookHistory.objects.filter(project=other).count() == 1


def test_history_has_a_global_cap(client, monkeypatch):
    """Many projects at once (ids are sequential) cannot grow the table past its cap."""
    monkeypatch.setattr(services, "WEBHOOK_HISTORY_MAX", 6)
    projects = [ProjectFactory(name=f"p{number}") for number in range(4)]
    for project in projects:
        for _ in range(3):
            assert wrong_secret_post(client, project.pk).status_code == 403

    assert WebhookHistory.objects.count() == 6
    newest = WebhookHistory.objects.order_by("pk").values_list("project_id", flat=True)
    assert list(newest) == [projects[2].pk] * 3 + [projects[3].pk] * 3
