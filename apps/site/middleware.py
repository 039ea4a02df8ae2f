"""Refuse requests early: anonymous uploads, bodies over the limit, uploads of a user who
already has UPLOADS_PER_USER in flight, text no view can take.

RequestBodyGuard:

Django reads a body lazily, but views read it early (the APIv3 merges its input before
anything else, CSRF checks look into forms), so an anonymous client could make a worker
read hundreds of megabytes just to be told 401, or stall it with a body that never ends.
This middleware decides from the headers alone: the credentials and the declared
Content-Length. In production nginx also buffers bodies (docs/operations.md); without it,
each upload holds a gunicorn thread while its body arrives, so one user may hold only a few
(and apps/core/slowbody.py bounds how long each may take).

InputGuard: the one place where text from outside is checked for NUL, lone surrogates and
JSON nesting (apps.core.input_checks), before any view or query sees it.
"""

import datetime
from io import BytesIO
from itertools import chain

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, JsonResponse, QueryDict
from django.shortcuts import render
from django.urls import Resolver404, resolve

from apps.accounts.authentication import (
    credentials_from_header,
    invalid_login_message,
    user_for_authorization,
)
from apps.accounts.services import upload_slot_release, upload_slot_take
from apps.accounts.throttle import LoginLocked
from apps.core.errors import InvalidForm, form_error_text
from apps.core.input_checks import NotJSON, form_problems, json_loads, text_problem

# The routes that take a package file; they need a user before a byte of the body is read.
UPLOAD_ROUTES = frozenset(
    {"v3-build-create-upload", "v3-build-create-rpm-upload", "v1-project-builds"}
)
UPLOAD_PAGES = frozenset({"build-new", "build-new-type"})
# Room for the multipart boundaries, the part headers and the `json` part beside the file.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# An upload's slot outlives its longest body (REQUEST_BODY_TIMEOUT) by this much, for the
# work after the body; only a slot of a killed process ever lasts that long.
UPLOAD_SLOT_SLACK = datetime.timedelta(minutes=10)
# What a client refused for too many uploads is told to wait: about one upload's time.
UPLOAD_RETRY_AFTER_SECONDS = 30


def upload_limit_bytes() -> int:
    return settings.MAX_SRPM_BYTES + MULTIPART_OVERHEAD_BYTES


def other_limit_bytes() -> int:
    """Any other body: form fields and JSON within Django's own limit, small files beside."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + MULTIPART_OVERHEAD_BYTES


class RequestBodyGuard:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        refusal = self.refusal(request)
        if refusal is not None:
            return refusal
        slot_id = getattr(request, "upload_slot_id", None)
        try:
            return self.get_response(request)
        finally:
            if slot_id is not None:
                upload_slot_release(slot_id=slot_id)

    def refusal(self, request) -> HttpResponse | None:
        if request.method not in BODY_METHODS:
            return None
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error(request, "The Content-Length header is not a number.", 400)
        if declared <= 0:
            return None  # nothing to read (Django ignores a chunked body without a length)
        route = route_name(request)
        uploader = None
        if route in UPLOAD_ROUTES | UPLOAD_PAGES:
            try:
                uploader = authenticated_user(request)
            except LoginLocked as locked:
                return locked.json_response()
            if uploader is None:
                return unauthenticated(request, route)
            limit = upload_limit_bytes()
            what = f"a package upload (MAX_SRPM_BYTES is {settings.MAX_SRPM_BYTES})"
        else:
            limit = other_limit_bytes()
            what = "this request"
        if declared > limit:
            return error(
                request,
                f"The request body is {declared} bytes; the largest accepted for {what} is "
                f"{limit} bytes.",
                413,
            )
        if uploader is not None:
            return self.take_upload_slot(request, uploader)
        return None

    def take_upload_slot(self, request, uploader) -> HttpResponse | None:
        """Count the upload against its user's in-flight uploads; 429 past the limit."""
        lifetime = datetime.timedelta(seconds=settings.REQUEST_BODY_TIMEOUT) + UPLOAD_SLOT_SLACK
        slot_id = upload_slot_take(
            user=uploader, limit=settings.UPLOADS_PER_USER, lifetime=lifetime
        )
        if slot_id is None:
            response = error(
                request,
                f"You already have {settings.UPLOADS_PER_USER} uploads in progress, the most "
                "one user may have at once (UPLOADS_PER_USER). Wait for one to finish, then "
                "send this one again.",
                429,
            )
            response["Retry-After"] = str(UPLOAD_RETRY_AFTER_SECONDS)
            return response
        request.upload_slot_id = slot_id
        return None


def route_name(request) -> str | None:
    try:
        return resolve(request.path_info).url_name
    except Resolver404:
        return None


def authenticated_user(request):
    """A session user, or the user of valid API credentials (Basic `login:token`), or None.

    A wrong token counts as a failed login (LoginLocked past the limit): this check must
    not be a way round the login throttle.
    """
    header = request.headers.get("Authorization", "")
    if header:
        return user_for_authorization(request, header)
    return request.user if request.user.is_authenticated else None


def unauthenticated(request, route: str) -> HttpResponse:
    if route in UPLOAD_PAGES:
        return redirect_to_login(request.get_full_path())  # what login_required answers
    if route.startswith("v3-"):
        return JsonResponse({"output": "notok", "error": invalid_login_message()}, status=401)
    response = JsonResponse(
        {"error": "Authentication credentials were not provided or are not valid."}, status=401
    )
    response["WWW-Authenticate"] = 'Basic realm="coprsite API"'
    return response


def error(request, message: str, status: int) -> HttpResponse:
    if request.path_info.startswith(("/api_3", "/api/")):
        return JsonResponse({"error": message}, status=status)
    return HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")


class InputGuard:
    """Refuse NUL, lone surrogates and too deeply nested JSON with a 400 that names the field.

    The path, the query string, the headers and the cookies are checked first, before
    sessions and API credentials are looked up with them (it comes before those in
    MIDDLEWARE). The body is checked in process_view: after RequestBodyGuard has judged its
    size and its sender from the headers, before any view, or CSRF's look into a form,
    reads it.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        problems = head_problems(request)
        return refused(request, problems) if problems else self.get_response(request)

    def process_view(self, request, view, args, kwargs):
        try:
            problems = body_problems(request)
        except NotJSON as error:
            return refused(request, {}, error.message)
        return refused(request, problems) if problems else None


def head_problems(request) -> dict[str, list[str]]:
    problems = {}
    problem = text_problem(request.path_info)
    if problem:
        problems["path"] = [problem]
    problems |= form_problems(every_value(request.GET))
    headers = {key: value for key, value in request.META.items() if key.startswith("HTTP_")}
    problems |= form_problems((header_name(key), value) for key, value in headers.items())
    if "HTTP_AUTHORIZATION" in headers:
        problem = credentials_problem(headers["HTTP_AUTHORIZATION"])
        if problem:
            problems["Authorization"] = [problem]
    cookies = ((f"cookie {name}", value) for name, value in request.COOKIES.items())
    return problems | form_problems(cookies)


def every_value(multi_value_dict):
    """(name, value) pairs of a QueryDict or MultiValueDict, a repeated name's every value."""
    return ((name, value) for name, values in multi_value_dict.lists() for value in values)


def header_name(meta_key: str) -> str:
    return meta_key.removeprefix("HTTP_").replace("_", "-").title()


def credentials_problem(header: str) -> str | None:
    """Basic credentials hide their text in base64; a login or token with NUL is refused here,
    before it is looked up (undecodable ones are left to authentication: a 401)."""
    for text in credentials_from_header(header) or ():
        problem = text_problem(text)
        if problem:
            return f"The credentials: {problem}"
    return None


def body_problems(request) -> dict[str, list[str]]:
    """Problems of a form or a JSON body (NotJSON when it says it is JSON and is not)."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return {}  # no body Django would read (RequestBodyGuard refuses it on body methods)
    if declared <= 0:
        return {}
    content_type = request.content_type or ""
    if content_type.startswith("multipart/"):
        if request.method not in BODY_METHODS:
            return {}
        fields, files = multipart_form(request, declared)
        names = ((name, upload.name or "") for name, upload in every_value(files))
        return form_problems(chain(every_value(fields), names))
    if content_type == "application/x-www-form-urlencoded":
        fields = request.POST if request.method == "POST" else QueryDict(request.body)
        return form_problems(every_value(fields))
    claims_json = content_type == "application/json" or content_type.endswith("+json")
    # APIv3 reads any body but a form as JSON (as Copr does), whatever its Content-Type says.
    if claims_json or request.body.lstrip()[:1] in (b"{", b"["):
        return json_body_problems(request.body, claims_json=claims_json)
    return {}


def json_body_problems(body: bytes, *, claims_json: bool) -> dict[str, list[str]]:
    try:
        json_loads(body)
    except NotJSON:
        if claims_json:
            raise
        return {}  # some other text that starts like JSON: the view decides what it is
    except InvalidForm as error:
        return error.errors
    return {}


def multipart_form(request, declared: int):
    """The fields and files of a multipart body, parsed here for every body method.

    A body that fits DATA_UPLOAD_MAX_MEMORY_SIZE is read whole first so the view can still
    read it raw (webhooks do); a larger one (an upload) is parsed as it streams in, its files
    spooled to disk. Django parses multipart bodies of POSTs only; Copr's chroot edit is a PUT.
    """
    small = declared <= settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if request.method == "POST":
        if small:
            request.body  # noqa: B018 (read and kept for the view)
        return request.POST, request.FILES
    stream = BytesIO(request.body) if small else request
    request._post, request._files = request.parse_file_upload(request.META, stream)
    return request._post, request._files


def refused(request, problems: dict[str, list[str]], message: str = "") -> HttpResponse:
    """A 400 in the shape the caller reads: APIv3's, API v1's or the site's 400 page."""
    message = message or form_error_text(problems)
    path = request.path_info
    if path.startswith("/api_3"):
        return JsonResponse({"output": "notok", "error": message}, status=400)
    if path.startswith("/api/v1/"):  # (/api/ itself is the page that shows API tokens)
        body = {"error": message, "fields": problems} if problems else {"error": message}
        return JsonResponse(body, status=400)
    return render(request, "400.html", {"exception": message}, status=400)
