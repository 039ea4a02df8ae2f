"""Every write of APIv3 and API v1 with wrong types, NUL, lone surrogates and deep JSON.

Each field of each write gets numbers, a boolean, a list and an object in place of its
value, one at a time over an otherwise working request (rolled back after each): nothing
answers 5xx, and a name field (owner, project, chroot, ...) that is not text is a 400 that
names it. Each write also gets NUL, a lone surrogate and JSON 100,000 levels deep: a 400.
"""

import base64
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from apps.accounts.services import api_token_regenerate
from apps.api.v3 import forms, project_chroots
from apps.core.names import NAME_FIELDS, NAME_LIST_FIELDS
from apps.packages.models import Package
from tests.factories import BuildFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db
X86 = "fedora-43-x86_64"
WRONG_TYPES = [7, True, [7], {"a": 1}]  # floats: test_a_number_is_never_taken_as_a_name
SOURCE_FIELDS = sorted(
    {key for keys in forms.SOURCE_KEYS.values() for key in keys} | set(forms.SOURCE_KEY_RENAMES)
)
PROJECT_FIELDS = [
    "name", "chroots", "repos", "use_bootstrap_container", "delete_after_days", "storage",
    "repo_priority", "bootstrap", "isolation", *forms.PROJECT_TEXT_KEYS,
    *forms.PROJECT_BOOL_KEYS, *forms.PROJECT_LIST_KEYS,
]  # fmt: skip
BUILD_FIELDS = [
    "ownername", "projectname", "chroots", "exclude_chroots", "enable_net", "timeout",
    "background", "isolation", "bootstrap", "project_dirname", "after_build_id", "with_build_id",
]  # fmt: skip
PACKAGE = ["ownername", "projectname", "packagename"]
CHROOT_FIELDS = [
    *project_chroots.CHROOT_LIST_KEYS, "bootstrap", "bootstrap_image", "isolation",
    "reset_fields", "delete_comps",
]  # fmt: skip
SCM = {"clone_url": "https://example.org/hello.git"}
OWNED = {"ownername": "alice", "projectname": "tools"}

# (method, path after /api_3/, a working body, the fields to spoil) of every APIv3 write.
V3_WRITES = [
    ("POST", "project/add/alice", {"name": "new", "chroots": [X86]}, PROJECT_FIELDS),
    ("POST", "project/edit/alice/tools", {}, PROJECT_FIELDS),
    ("POST", "project/fork/alice/tools", {"name": "fork"}, ["name", "ownername", "confirm"]),
    ("POST", "project/delete/alice/tools", {"verify": True}, ["verify"]),
    ("POST", "project/regenerate-repos/alice/tools", {}, []),
    ("POST", "project/permissions/set/alice/tools", {"bob": {"builder": "approved"}}, ["bob"]),
    ("POST", "project/permissions/request/alice/tools", {"builder": True}, ["builder", "admin"]),
    ("POST", f"project-chroot/edit/alice/tools/{X86}", {}, CHROOT_FIELDS),
    ("POST", "build/cancel/{build}", {}, []),
    ("POST", "build/check-before-build", dict(OWNED), BUILD_FIELDS),
    ("POST", "build/create/url", {**OWNED, "pkgs": ["https://e.org/a.src.rpm"]}, BUILD_FIELDS),
    ("POST", "build/create/upload", dict(OWNED), BUILD_FIELDS),
    ("POST", "build/create/rpm-upload", dict(OWNED), BUILD_FIELDS),
    *(
        ("POST", f"build/create/{kind}", {**OWNED, **SCM}, [*BUILD_FIELDS, *SOURCE_FIELDS])
        for kind in ("scm", "pypi", "rubygems", "custom", "distgit")
    ),
    ("POST", "build/delete/list", {"builds": ["{build}"]}, ["builds"]),
    ("POST", "build/delete/{build}", {}, []),
    ("POST", "package/add/alice/tools/new/scm", dict(SCM), [*SOURCE_FIELDS, "max_builds"]),
    (
        "POST",
        "package/edit/alice/tools/hello/scm",
        {},
        [*SOURCE_FIELDS, *forms.PACKAGE_SETTING_KEYS],
    ),
    ("POST", "package/reset", {**OWNED, "packagename": "hello"}, PACKAGE),
    ("POST", "package/build", {**OWNED, "packagename": "hello"}, [*PACKAGE, *BUILD_FIELDS]),
    ("POST", "package/delete", {**OWNED, "packagename": "hello"}, PACKAGE),
    ("POST", "webhook/generate/alice/tools", {}, []),
    ("POST", "api-token", {}, []),
]
# The same for API v1.
V1_WRITES = [
    (
        "POST",
        "projects",
        {"name": "new", "chroots": [X86]},
        ["owner", "name", "chroots", "persistent", "delete_after", *forms.PROJECT_BOOL_KEYS],
    ),
    (
        "PATCH",
        "projects/alice/tools",
        {},
        ["chroots", "description", "additional_repos", "repo_priority", "bootstrap"],
    ),
    ("DELETE", "projects/alice/tools", {}, []),
    (
        "POST",
        "projects/alice/tools/builds",
        {"source_url": "https://e.org/a.src.rpm"},
        ["source_url", "chroots", "exclude_chroots", "enable_net", "timeout", "background"],
    ),
    ("PATCH", "builds/{build}", {"state": "canceled"}, ["state"]),
    ("DELETE", "builds/{build}", {}, []),
]


@pytest.fixture
def world(settings, tmp_path):
    settings.RESULTS_ROOT = tmp_path / "results"
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.SUBMIT_CHECK_URLS = False
    alice = UserFactory(username="alice")
    UserFactory(username="bob")
    project = ProjectFactory(owner_user=alice, name="tools", chroot_names=[X86])
    Package.objects.create(project=project, name="hello", source_type="scm", source_json=SCM)
    build = BuildFactory(project=project)
    token = api_token_regenerate(user=alice)
    credentials = base64.b64encode(f"{token.login}:{token.token}".encode()).decode()
    client = Client(
        raise_request_exception=False, headers={"Authorization": f"Basic {credentials}"}
    )
    return {"client": client, "build": str(build.pk)}


def send(world, method: str, path: str, body: str):
    """One request, rolled back: every request starts from the same project."""
    with transaction.atomic():
        response = world["client"].generic(
            method, path.format(build=world["build"]), body, content_type="application/json"
        )
        transaction.set_rollback(True)
    return response


def spoiled(base: dict, field: str, value, build: str) -> str:
    body = {**base, field: value}
    return json.dumps(body).replace('"{build}"', build)


def v3_write_views() -> set:
    """The view classes of APIv3 that take a write (POST, PUT or DELETE)."""
    found = set()
    v3 = next(p for p in get_resolver().url_patterns if "api_3" in str(p.pattern))
    assert isinstance(v3, URLResolver)
    for pattern in v3.url_patterns:
        assert isinstance(pattern, URLPattern)
        view = pattern.callback.view_class
        if any(hasattr(view, method) for method in ("post", "put", "delete")):
            found.add(view)
    return found


def test_the_table_has_every_apiv3_write():
    listed = {
        resolve(f"/api_3/{path.format(build=1)}").func.view_class for _, path, *_ in V3_WRITES
    }
    unknown_endpoint = resolve("/api_3/no/such/thing").func.view_class
    assert v3_write_views() - {unknown_endpoint} <= listed


@pytest.mark.parametrize(
    ("prefix", "writes"), [("/api_3/", V3_WRITES), ("/api/v1/", V1_WRITES)], ids=["v3", "v1"]
)
def test_wrong_types_in_every_field_of_every_write_are_never_a_5xx(world, prefix, writes):
    failures = []
    for method, path, base, fields in writes:
        for field in fields:
            for value in WRONG_TYPES:
                body = spoiled(base, field, value, world["build"])
                response = send(world, method, prefix + path, body)
                status = response.status_code
                if status >= 500:
                    failures.append((method, path, field, value, status))
                elif field in NAME_FIELDS | NAME_LIST_FIELDS:
                    error = response.json().get("error", "")
                    if status != 400 or f"{field}: Expected" not in error:
                        failures.append((method, path, field, value, status, error))
    assert not failures, "\n".join(map(str, failures))


HOSTILE_BODIES = {
    "NUL": json.dumps({"ownername": "alice", "description": "a\x00b"}),
    "lone surrogate": '{"ownername": "alice", "description": "\\ud800"}',
    "100,000 levels deep": "[" * 100_000,
    "65 levels deep": '{"description": ' + "[" * 65 + "]" * 65 + "}",
}


@pytest.mark.parametrize("hostile", HOSTILE_BODIES)
@pytest.mark.parametrize(
    ("prefix", "writes"), [("/api_3/", V3_WRITES), ("/api/v1/", V1_WRITES)], ids=["v3", "v1"]
)
def test_every_write_refuses_nul_surrogates_and_deep_json(world, prefix, writes, hostile):
    failures = []
    for method, path, _, _ in writes:
        response = send(world, method, prefix + path, HOSTILE_BODIES[hostile])
        if response.status_code != 400:
            failures.append((method, path, response.status_code, response.content[:200]))
    assert not failures, "\n".join(map(str, failures))


@pytest.mark.parametrize("value", [1, 1.5, -1, True])
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api_3/build/create/url", {"projectname": "tools", "pkgs": ["https://e.org/a.src.rpm"]}),
        ("/api_3/project/add/alice", {"chroots": [X86]}),
        ("/api/v1/projects", {"chroots": [X86]}),
    ],
)
def test_a_number_is_never_taken_as_a_name(world, path, body, value):
    field = "ownername" if "create/url" in path else "name"
    response = send(world, "POST", path, json.dumps({**body, field: value}))
    assert response.status_code == 400, response.content
    kind = "a boolean" if value is True else "a number"
    assert response.json()["error"] == f"{field}: Expected text, got {kind}."


@pytest.mark.parametrize("value", [1, 1.5, -1])
def test_a_number_as_the_owner_of_an_upload_is_refused(world, value):
    """copr-cli's upload: the options in the multipart `json` part beside the package."""
    options = json.dumps({"ownername": value, "projectname": "tools", "chroots": [X86]})
    response = world["client"].post(
        "/api_3/build/create/upload",
        {
            "json": SimpleUploadedFile("json", options.encode(), "application/json"),
            "pkgs": SimpleUploadedFile("hello-1.0-1.src.rpm", b"not really an rpm"),
        },
    )
    assert response.status_code == 400, response.content
    assert response.json()["error"] == "ownername: Expected text, got a number."
