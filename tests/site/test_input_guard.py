"""InputGuard (apps/site/middleware.py): NUL, lone surrogates and deep JSON are a 400 anywhere.

The walk sends every route of the URLconf, filled with working names and with hostile ones,
GET, POST and OPTIONS, anonymous and logged in: nothing answers 5xx, and what carries NUL,
a lone surrogate or deep JSON is refused by the guard with a 400 (on SQLite too, which would
store a NUL that PostgreSQL refuses with a 500).
"""

import base64
import json
import re
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404

from apps.accounts.services import api_token_regenerate
from apps.core.input_checks import MAX_JSON_DEPTH
from apps.packages.models import Package
from apps.site.middleware import UPLOAD_PAGES, UPLOAD_ROUTES
from tests.factories import (
    BuildFactory,
    BuildTaskFactory,
    GroupFactory,
    ProjectFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db
X86 = "fedora-43-x86_64"
NUL = "a\x00b"
DEEP = "[" * 100_000
SURROGATE_JSON = '{"name": "\\ud800", "description": "x\\udfffy"}'
METHODS = ("GET", "POST", "OPTIONS")
BODIES = {
    "form with NUL": ("application/x-www-form-urlencoded", "name=a%00b&description=x"),
    "JSON with NUL": ("application/json", json.dumps({"name": NUL, "chroots": [X86]})),
    "JSON with a lone surrogate": ("application/json", SURROGATE_JSON),
    "JSON 100,000 levels deep": ("application/json", DEEP),
}


# --- the URLconf, filled in ---------------------------------------------------------------


def routes(resolver=None, prefix: str = ""):
    """(regex of the whole path, pattern) of every route, includes followed."""
    resolver = resolver or get_resolver()
    for pattern in resolver.url_patterns:
        regex = prefix + pattern.pattern.regex.pattern.lstrip("^")
        if isinstance(pattern, URLResolver):
            yield from routes(pattern, regex)
        elif isinstance(pattern, URLPattern):
            yield regex, pattern


def closing(regex: str, start: int) -> int:
    """The index of the `)` that closes the group opening at `start`."""
    depth, i = 0, start
    while i < len(regex):
        if regex[i] == "\\":
            i += 2
            continue
        if regex[i] == "[":
            i = regex.index("]", i + 2)
        elif regex[i] == "(":
            depth += 1
        elif regex[i] == ")":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ValueError(regex)


def alternatives(regex: str) -> list[str]:
    """The top-level `|` branches of a regex."""
    branches, depth, start, i = [], 0, 0, 0
    while i < len(regex):
        char = regex[i]
        if char == "\\":
            i += 2
            continue
        if char in "([":
            depth += 1
        elif char in ")]":
            depth -= 1
        elif char == "|" and depth == 0:
            branches.append(regex[start:i])
            start = i + 1
        i += 1
    return [*branches, regex[start:]]


def sample(regex: str, values: list[dict[str, str]]) -> str:
    """A path the regex matches: named groups from the first of `values` whose value the
    group takes, optional parts left out."""
    out, i = [], 0
    while i < len(regex):
        char = regex[i]
        if regex.startswith("(?P<", i):
            end = closing(regex, i)
            name = regex[i + 4 : regex.index(">", i)]
            inner = regex[regex.index(">", i) + 1 : end]
            out.append(group_value(name, inner, values))
            i = end + 1
        elif char == "(":
            end = closing(regex, i)
            kind = regex[i + 1 : i + 3]
            if kind in ("?!", "?="):
                pass  # a lookahead matches nothing itself
            elif regex[end + 1 : end + 2] != "?":
                inner = regex[i + 3 : end] if kind == "?:" else regex[i + 1 : end]
                out.append(sample(alternatives(inner)[0], values))
            i = end + 1
        elif char == "\\":
            escaped = regex[i + 1]
            out.append({"d": "1", "Z": "", "w": "x"}.get(escaped, escaped))
            i += 2
        elif char == "[":
            out.append("x")
            i = regex.index("]", i + 2) + 1
        elif char == ".":
            out.append("x")
            i += 1
        elif char in "^$?+*":
            i += 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def group_value(name: str, inner: str, values: list[dict[str, str]]) -> str:
    """The value for a named group, if the group takes it; else one the group takes."""
    candidates = [choices[name] for choices in values if name in choices]
    for candidate in (*candidates, alternatives(inner)[0], "1", "x"):
        if re.fullmatch(inner, candidate):
            return candidate
    return sample(inner, values)


def filled_routes(values: dict[str, str], hostile: dict[str, str]):
    """(path, route) of every route with working values, and its path with hostile names."""
    for regex, pattern in routes():
        path = "/" + sample(regex, [values])
        # Every name in the path replaced, where its group takes it; else the path gets one.
        nasty = "/" + sample(regex, [hostile, values])
        if nasty == path and hostile:
            nasty = path.rstrip("/") + "/" + hostile["name"] + "/"
        yield pattern, path, nasty


@pytest.fixture
def world(settings, tmp_path):
    """Alice's project `tools` with a package, a build and its task; a group; a staff user."""
    settings.RESULTS_ROOT = tmp_path / "results"
    settings.UPLOADS_ROOT = tmp_path / "uploads"
    settings.KEYS_ROOT = tmp_path / "keys"
    settings.SUBMIT_CHECK_URLS = False
    alice = UserFactory(username="alice")
    project = ProjectFactory(owner_user=alice, name="tools", chroot_names=[X86])
    # A source the custom webhook can build (its failure to build is Copr's 500).
    source = {"type": "git", "clone_url": "https://example.org/hello.git", "committish": ""}
    Package.objects.create(project=project, name="hello", source_type="scm", source_json=source)
    build = BuildFactory(project=project)
    task = BuildTaskFactory(build=build)
    GroupFactory(name="packagers")
    number = {"build_id": build.pk, "task_id": task.pk, "copr_id": project.pk}
    values = {
        **{key: str(value) for key, value in number.items()},
        **dict.fromkeys(("owner", "ownername", "username", "who", "user"), "alice"),
        **dict.fromkeys(("project", "projectname", "name", "dirname"), "tools"),
        **dict.fromkeys(("package", "package_name", "pkg_name", "packagename"), "hello"),
        **dict.fromkeys(("chroot", "chrootname", "chroot_name"), X86),
        "group": "packagers",
        "name_release": "fedora-43",
        "repofile": "alice-tools-fedora-43.repo",
        "source_type": "scm",
        "source_type_text": "scm",
        "uuid": str(project.webhook_secret),
        "path": f"alice/tools/{X86}/",
        "object_id": str(alice.pk),
        "limit": "5",
        "variant": "simple",
    }
    text_groups = {name for name in values if name not in number and name != "limit"}
    return {"alice": alice, "values": values, "text_groups": text_groups}


def clients(alice) -> dict[str, Client]:
    logged_in = Client(raise_request_exception=False)
    logged_in.force_login(alice)
    return {"anonymous": Client(raise_request_exception=False), "alice": logged_in}


def is_upload_route(pattern) -> bool:
    return pattern.name in UPLOAD_ROUTES | UPLOAD_PAGES


def test_every_route_refuses_hostile_input_and_never_answers_5xx(world):
    """Every route, its names hostile (path, query) or its body hostile: 400, never 5xx."""
    hostile = dict.fromkeys(world["text_groups"], NUL)
    # A lone surrogate cannot travel in a URL (UTF-8 has no bytes for one); its would-be
    # bytes are broken UTF-8, which Django keeps as percent escapes: any answer but a 5xx.
    broken = dict.fromkeys(world["text_groups"], "%ED%A0%80")
    failures, count = [], 0
    for who, client in clients(world["alice"]).items():
        routes_filled = zip(
            filled_routes(world["values"], hostile),
            filled_routes(world["values"], broken),
            strict=True,
        )
        for (pattern, path, nasty), (_, _, nasty_broken) in routes_filled:
            refused = [(method, quote(nasty, safe="/"), "", "") for method in METHODS]
            refused.append(("GET", f"{quote(path)}?q=a%00b", "", ""))
            bodies = [("POST", quote(path), kind, body) for kind, body in BODIES.values()]
            others = [("GET", quote(nasty_broken, safe="/%"), "", "")]
            for method, url, content_type, body in refused + bodies + others:
                count += 1
                response = client.generic(method, url, body, content_type=content_type)
                status = response.status_code
                # NUL, surrogates and deep JSON are the guard's 400, except where
                # RequestBodyGuard answers first: an anonymous upload is a 401 (or the login).
                anonymous_upload = who == "anonymous" and is_upload_route(pattern)
                expected_400 = url != others[0][1] and not (
                    body and anonymous_upload and status in (302, 401)
                )
                if status >= 500 or (expected_400 and status != 400):
                    failures.append((who, method, url, content_type, status))
    assert count > 5000
    assert not failures, "\n".join(map(str, failures))


def test_every_route_still_answers_working_requests_without_5xx(world):
    """The same routes with working names: whatever they answer, it is not a 5xx."""
    failures = []
    for who, client in clients(world["alice"]).items():
        for _, path, _ in filled_routes(world["values"], {}):
            for method in ("get", "options"):
                response = client.generic(method.upper(), quote(path))
                if response.status_code >= 500:
                    failures.append((who, method, path, response.status_code))
    assert not failures, "\n".join(map(str, failures))


def test_the_walk_fills_most_routes_with_working_values(world):
    """The sampler is only useful if the filled paths resolve to their own route."""
    resolved = total = 0
    for pattern, path, _ in filled_routes(world["values"], {}):
        total += 1
        try:
            match = resolve(path)
        except Resolver404:
            continue
        resolved += match.func is pattern.callback or match.url_name == pattern.name
    assert total > 250
    assert resolved / total > 0.9


# --- what the refusals say ----------------------------------------------------------------


def basic(login: str, token: str) -> str:
    return "Basic " + base64.b64encode(f"{login}:{token}".encode()).decode()


@pytest.mark.parametrize("path", ["/api_3/auth-check", "/api/v1/auth-check", "/api_3/project/list"])
def test_nul_in_basic_credentials_is_a_400_before_any_lookup(db, path):
    alice = UserFactory(username="alice")
    token = api_token_regenerate(user=alice)
    response = Client().get(path, headers={"Authorization": basic(f"{token.login}\x00", "x")})
    assert response.status_code == 400
    assert response.json()["error"] == (
        "Authorization: The credentials: NUL characters are not allowed."
    )


def test_apiv3_refusal_is_in_coprs_error_shape(db):
    response = Client().get("/api_3/project", {"ownername": "alice", "projectname": "x\x00y"})
    assert response.status_code == 400
    assert response.json() == {
        "output": "notok",
        "error": "projectname: NUL characters are not allowed.",
    }


def test_api_v1_refusal_names_the_fields(db):
    body = {"name": "ok", "description": "x\x00", "chroots": [X86, "\x00"]}
    response = Client().post("/api/v1/projects", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {
        "error": "description: NUL characters are not allowed.\n"
        "chroots: NUL characters are not allowed.",
        "fields": {
            "description": ["NUL characters are not allowed."],
            "chroots": ["NUL characters are not allowed."],
        },
    }


def test_a_page_refusal_is_the_sites_400_page_with_the_reason(db):
    response = Client().get("/search/", {"q": "a\x00b"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "<h1>Bad request</h1>" in page and "q: NUL characters are not allowed." in page


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (DEEP, "depth limit exceeded"),
        ("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1), "body: The JSON is nested"),
        ('{"name": "\\ud800"}', "Lone surrogates"),
        ('{"a": {"b\\u0000": 1}}', "a: NUL characters are not allowed."),
    ],
)
def test_json_refusals_say_what_is_wrong(db, body, message):
    for path in ("/api_3/project/add/alice", "/api/v1/projects", "/webhooks/github/1/x/"):
        response = Client().post(path, body, content_type="application/json")
        assert response.status_code == 400, (path, response.content)
        assert message in response.content.decode(), (path, response.content)


def test_json_as_deep_as_allowed_is_taken(db):
    alice = UserFactory(username="alice")
    token = api_token_regenerate(user=alice)
    nested = json.loads("[" * (MAX_JSON_DEPTH - 1) + "]" * (MAX_JSON_DEPTH - 1))
    body = {"name": "deep", "chroots": [X86], "description": "ok", "unused": nested}
    response = Client().post(
        "/api_3/project/add/alice",
        json.dumps(body),
        content_type="application/json",
        headers={"Authorization": basic(token.login, token.token)},
    )
    assert response.status_code == 200, response.content


def test_a_cookie_with_nul_is_refused_before_the_session_is_read(db):
    client = Client()
    client.cookies["sessionid"] = "abcdefgh\x00"
    response = client.get("/")
    assert response.status_code == 400
    assert "cookie sessionid: NUL characters are not allowed." in response.content.decode()


def test_a_multipart_put_is_checked_too(db):
    """Django parses multipart bodies of POSTs only; APIv3's chroot edit is a PUT."""
    boundary = "xyz"
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="json"\r\n\r\n'
        '{"additional_packages": ["a\\u0000"]}\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="note"\r\n\r\n'
        "a\x00b\r\n"
        f"--{boundary}--\r\n"
    )
    response = Client().put(
        f"/api_3/project-chroot/edit/alice/tools/{X86}",
        body.encode(),
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    assert response.status_code == 400
    assert response.json()["error"] == "note: NUL characters are not allowed."


def test_webhooks_still_read_a_small_multipart_body_raw(db, settings):
    """The guard parses a form before the view; the custom webhook still gets the raw body."""
    settings.SUBMIT_CHECK_URLS = False
    project = ProjectFactory(name="tools", chroot_names=[X86])
    source = {"type": "git", "clone_url": "https://example.org/hello.git", "committish": ""}
    Package.objects.create(project=project, name="hello", source_type="scm", source_json=source)
    url = f"/webhooks/custom/{project.pk}/{project.webhook_secret}/hello/"
    response = Client().post(url, {"field": "value"})  # multipart, as curl -F sends it
    assert response.status_code == 200, response.content
    assert response.content.decode().strip().isdigit()  # the build's id


@pytest.mark.parametrize(
    ("query", "body"),
    [("?q=a%00b&q=fine", ""), ("", "note=a%00b&note=fine")],
    ids=["query", "form"],
)
def test_every_value_of_a_repeated_field_is_checked(db, query, body):
    response = Client().post(
        f"/search/{query}", body, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 400
    assert "NUL characters are not allowed." in response.content.decode()


def test_nul_in_any_header_is_refused(db):
    """Webhooks store the User-Agent and delivery headers they are sent."""
    response = Client().post(
        "/webhooks/github/1/x/",
        "{}",
        content_type="application/json",
        headers={"User-Agent": "a\x00b"},
    )
    assert response.status_code == 400
    assert "User-Agent: NUL characters are not allowed." in response.content.decode()


def test_the_api_token_page_is_a_page_not_an_api(db):
    response = Client().get("/api/", {"q": "a\x00b"})
    assert response.status_code == 400
    assert "<h1>Bad request</h1>" in response.content.decode()
