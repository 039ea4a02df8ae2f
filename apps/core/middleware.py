"""Refuse a request before its body is read: anonymous uploads, and bodies over the limit.

Django reads a body lazily, but views read it early (the APIv3 merges its input before
anything else, CSRF checks look into forms), so an anonymous client could make a worker
read hundreds of megabytes just to be told 401, or stall it with a body that never ends.
This middleware decides from the headers alone: the credentials and the declared
Content-Length. In production nginx also buffers bodies (README, Production).
"""

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponse, JsonResponse
from django.urls import Resolver404, resolve

from apps.accounts.authentication import invalid_login_message, user_for_authorization
from apps.accounts.throttle import LoginLocked

# The routes that take a package file; they need a user before a byte of the body is read.
UPLOAD_ROUTES = frozenset(
    {"v3-build-create-upload", "v3-build-create-rpm-upload", "v1-project-builds"}
)
UPLOAD_PAGES = frozenset({"build-new", "build-new-type"})
# Room for the multipart boundaries, the part headers and the `json` part beside the file.
MULTIPART_OVERHEAD_BYTES = 1024 * 1024
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def upload_limit_bytes() -> int:
    return settings.MAX_SRPM_BYTES + MULTIPART_OVERHEAD_BYTES


def other_limit_bytes() -> int:
    """Any other body: form fields and JSON within Django's own limit, small files beside."""
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE + MULTIPART_OVERHEAD_BYTES


class RequestBodyGuard:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.refusal(request) or self.get_response(request)

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
        if route in UPLOAD_ROUTES | UPLOAD_PAGES:
            try:
                if not is_authenticated(request):
                    return unauthenticated(request, route)
            except LoginLocked as locked:
                return locked.json_response()
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
        return None


def route_name(request) -> str | None:
    try:
        return resolve(request.path_info).url_name
    except Resolver404:
        return None


def is_authenticated(request) -> bool:
    """A session user, or valid API credentials (Basic `login:token`) in the header.

    A wrong token counts as a failed login (LoginLocked past the limit): this check must
    not be a way round the login throttle.
    """
    header = request.headers.get("Authorization", "")
    if header:
        return user_for_authorization(request, header) is not None
    return request.user.is_authenticated


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
