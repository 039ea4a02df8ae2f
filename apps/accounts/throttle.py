"""Failed-login throttling with django-axes: who counts, the client address, the lockout answer."""

import copy
import ipaddress
import math

from axes.handlers.database import AxesDatabaseHandler
from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off
from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.signals import user_login_failed
from django.db.models import Max, Q
from django.http import HttpRequest, HttpResponse, JsonResponse, QueryDict
from django.utils import timezone
from django.utils.datastructures import MultiValueDict

from apps.accounts.views import LoginView

# Stands for the token in what axes records: the real one is never passed on.
MASKED_SECRET = "********"  # noqa: S105 (a placeholder, not a password)


class LoginLocked(Exception):
    """Too many failed logins for a name or from an address; the message says when to retry."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after

    def json_response(self) -> JsonResponse:
        """The API's answer (Copr's error shape), telling clients when to come back."""
        response = JsonResponse({"output": "notok", "error": self.message}, status=429)
        response["Retry-After"] = str(self.retry_after)
        return response


class LoginFailuresHandler(AxesDatabaseHandler):
    """Axes' database handler, except that a login clears only its own name-and-address.

    Axes would delete every failure of the name *or* the address: an attacker who logs into
    an account of their own every nine guesses would keep resetting the count of the
    account they guess at.
    """

    def reset_user_attempts(self, request, credentials=None) -> int:
        username = get_client_username(request, credentials)
        attempts = AccessAttempt.objects.filter(
            username=username, ip_address=request.axes_ip_address
        )
        count, _ = attempts.delete()
        return count


def is_not_password_attempt(request: HttpRequest, credentials: dict | None) -> bool:
    """OIDC callbacks authenticate with a code, not a secret: axes neither counts nor locks them."""
    return not (credentials or {}).get("password")


def client_address(request: HttpRequest) -> str | None:
    """The client's address: the right-most one of LOGIN_CLIENT_IP_HEADER when set.

    The right-most entry is the one the trusted proxy wrote; anything left of it came from
    the client and may be made up.
    """
    header = settings.LOGIN_CLIENT_IP_HEADER
    if header:
        forwarded = request.headers.get(header, "").split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(forwarded))
        except ValueError:
            pass
    return request.META.get("REMOTE_ADDR")


def retry_after_seconds(request: HttpRequest, credentials: dict | None) -> int:
    """At most how long until the lockout of this name or address ends."""
    cool_off = get_cool_off(request)
    if cool_off is None:
        return 0
    username = get_client_username(request, credentials)
    latest = (
        AccessAttempt.objects.filter(
            Q(username=username) | Q(ip_address=request.axes_ip_address),
            attempt_time__gte=timezone.now() - cool_off,
        ).aggregate(latest=Max("attempt_time"))["latest"]
        or timezone.now()
    )
    return max(1, math.ceil((latest + cool_off - timezone.now()).total_seconds()))


def lockout_message(seconds: int) -> str:
    minutes = max(1, math.ceil(seconds / 60))
    return (
        "Too many failed logins for this account or from your address. "
        f"Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def lockout_response(request: HttpRequest, original_response, credentials) -> HttpResponse:
    """429 for a locked-out login: JSON for API credentials, else the login page saying when."""
    seconds = retry_after_seconds(request, credentials)
    message = lockout_message(seconds)
    if "HTTP_AUTHORIZATION" in request.META:
        return LoginLocked(message, seconds).json_response()
    view = LoginView()
    view.setup(request)
    # An unbound form: rendering the posted one would run its check, a login attempt.
    context = view.get_context_data(form=AuthenticationForm(request), refused=message)
    # Rendered here: a response that middleware returns is not rendered by Django.
    response = view.response_class(request, view.get_template_names(), context, status=429)
    response.render()
    response["Retry-After"] = str(seconds)
    return response


def api_attempt(login: str | None) -> dict:
    """API Basic credentials as axes counts them: under `api:<login>`.

    The API login is not a username, and a name locked out at the login page must not stop
    that person's API token (nor the other way round).
    """
    return {"username": f"api:{login}" if login else None, "password": MASKED_SECRET}


def login_allowed_check(request: HttpRequest, attempt: dict) -> None:
    """LoginLocked when the attempt's name or address is locked out."""
    # Axes' own check ignores AXES_ENABLED (its backend and signals do not).
    if settings.AXES_ENABLED and not AxesProxyHandler.is_allowed(request, attempt):
        seconds = retry_after_seconds(request, attempt)
        raise LoginLocked(lockout_message(seconds), seconds)


def login_failure_record(request: HttpRequest, attempt: dict) -> None:
    """Count a failed API attempt; LoginLocked when it was the one that reached the limit."""
    # Axes keeps a failed request's form fields. An API request's body is no login form, and
    # may be an upload that apps/site/middleware.py refuses unread: axes gets a copy without.
    record = copy.copy(request)
    record._post, record._files = QueryDict(), MultiValueDict()
    user_login_failed.send(sender=__name__, credentials=attempt, request=record)
    if getattr(record, "axes_locked_out", False):
        seconds = retry_after_seconds(request, attempt)
        raise LoginLocked(lockout_message(seconds), seconds)
