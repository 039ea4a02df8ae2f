"""The plumbing of /api_3: Copr's auth, error bodies, input merging and pagination."""

import logging
from itertools import islice

import orjson
from django.db.models import QuerySet
from django.http import HttpResponse, JsonResponse, StreamingHttpResponse
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt

from apps.accounts.authentication import invalid_login_message, user_for_authorization
from apps.accounts.throttle import LoginLocked
from apps.core.errors import InvalidForm, ServiceError
from apps.core.input_checks import json_loads
from apps.core.names import MAX_BIGINT, json_type, name_type_errors, text_errors

logger = logging.getLogger(__name__)
# Copr's JSON-to-form booleans (WTForms' BooleanField with false_values plus the texts
# HTML forms and copr-cli send). Anything else, "maybe" or an object, is refused.
TRUE_TEXTS = frozenset({"true", "1", "on", "y", "yes"})
FALSE_TEXTS = frozenset({"false", "", "0", "off", "n", "no", "none"})
ORDER_TYPES = ("ASC", "DESC")


class Unauthorized(Exception):
    """Missing, wrong or expired API credentials: Copr answers 401 with its own body."""


class CoprView(View):
    """Base of every /api_3 view: JSON in and out, Copr's error shape, no CSRF (token auth)."""

    # Whether the body's name fields (ownername, projectname, chroots, ...) must be text; off
    # where the body's keys are user names rather than fields (permissions/set).
    body_has_name_fields = True

    @method_decorator(csrf_exempt)
    def dispatch(self, request, *args, **kwargs):
        # NUL, lone surrogates and deep JSON never get here (apps.site.middleware.InputGuard).
        try:
            self.data = request_data(request)
            if self.body_has_name_fields and (errors := name_type_errors(self.data)):
                raise InvalidForm(errors)
            return super().dispatch(request, *args, **kwargs)
        except Unauthorized:
            return JsonResponse({"output": "notok", "error": invalid_login_message()}, status=401)
        except LoginLocked as locked:
            return locked.json_response()
        except ServiceError as error:
            return error_response(error.message, error.status)

    def http_method_not_allowed(self, request, *args, **kwargs):
        allowed = ", ".join(m.upper() for m in self.http_method_names if hasattr(self, m))
        response = error_response(
            f"Method {request.method} is not allowed here; use {allowed}.", status=405
        )
        response["Allow"] = allowed
        return response

    # --- who is asking --------------------------------------------------------------------

    def authenticated_user(self):
        """The user of the Basic `login:token` credentials, or Unauthorized."""
        header = self.request.headers.get("Authorization", "")
        user = user_for_authorization(self.request, header) if header else None
        if user is None:
            raise Unauthorized
        return user

    # --- input ----------------------------------------------------------------------------

    def param(self, name: str, default=None, *, required: bool = False):
        """A value from the query, then the path, then the body (Copr's binding order)."""
        for source in (self.request.GET, self.kwargs, self.data):
            value = source.get(name)
            if isinstance(value, dict | list | bool):
                raise InvalidForm({name: [f"Expected text, got {json_type(value)}."]})
            if value is not None and value != "":
                return value
        if required:
            raise ServiceError(f"Missing argument {name}")
        return default

    def body(self, name: str, default=None):
        value = self.data.get(name)
        return default if value is None else value


def error_response(message: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def request_data(request) -> dict:
    """The JSON body, the multipart `json` part, or the form; nulls dropped as Copr does.

    Multipart bodies of every method (Copr's chroot edit is a PUT) are parsed by InputGuard.
    """
    content_type = request.content_type or ""
    if content_type.startswith("multipart/"):
        part = request.FILES.get("json")
        raw = part.read() if part else request.POST.get("json", "")
        data = parse_json(raw) if raw else dict(request.POST.items())
    elif request.body and content_type != "application/x-www-form-urlencoded":
        data = parse_json(request.body)
    else:
        data = dict(request.POST.items())
    return {key: value for key, value in data.items() if value is not None}


def parse_json(raw: bytes | str) -> dict:
    data = json_loads(raw)  # depth-bounded; NUL and lone surrogates refused per field
    if not isinstance(data, dict):
        raise ServiceError("The request body must be a JSON object.")
    return data


# --- value conversion ---------------------------------------------------------------------


def as_bool(value, default: bool | None = False, *, name: str = "value") -> bool | None:
    """Copr's lenient booleans: JSON true/false, "True"/"False", "1"/"0", "on"/"off", "y"/"n"."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    text = value.strip().lower() if isinstance(value, str) else None
    if text in TRUE_TEXTS:
        return True
    if text in FALSE_TEXTS:
        return False
    shown = f"'{value}'" if isinstance(value, str) else json_type(value)
    raise InvalidForm({name: [f"Expected a boolean (true or false), got {shown}."]})


def as_int(value, name: str, *, minimum: int | None = None, maximum: int | None = MAX_BIGINT):
    if value is None or value == "":
        return None
    if isinstance(value, bool | dict | list | float):
        raise InvalidForm({name: [f"Expected a whole number, got {json_type(value)}."]})
    try:
        number = int(value)
    except (TypeError, ValueError) as error:
        raise InvalidForm({name: [f"'{value}' is not a whole number."]}) from error
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        limits = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise InvalidForm({name: [f"{number} must be {limits}."]})
    return number


def as_text(value, name: str) -> str:
    """Free text: a string (a number is taken as its digits), never an object's repr."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    errors = text_errors(value)
    if errors:
        raise InvalidForm({name: errors})
    return value


# --- lists ---------------------------------------------------------------------------------


def paginated(view: CoprView, queryset: QuerySet, render, *, orders: dict[str, str]) -> dict:
    """Copr's `{items, meta}` with `limit`, `offset`, `order` and `order_type` from the query.

    `orders` maps Copr's column names to ORM fields. Copr answers a bad `order_type` with a
    500; here it is a 400 that says what is allowed.
    """
    rows, meta = page_of(view, queryset, orders=orders)
    return {"items": [render(row) for row in rows], "meta": meta}


def page_of(view: CoprView, queryset: QuerySet, *, orders: dict[str, str]):
    """The ordered, sliced queryset a list asks for, and Copr's `meta` describing it."""
    # Both bounded by bigint: a larger number is a 400, not a database error.
    limit = as_int(view.request.GET.get("limit"), "limit", minimum=0)
    offset = as_int(view.request.GET.get("offset"), "offset", minimum=0) or 0
    order = view.request.GET.get("order") or "id"
    order_type = view.request.GET.get("order_type") or "ASC"
    if order not in orders:
        raise ServiceError(f"Cannot order by {order}; use one of {', '.join(sorted(orders))}.")
    if order_type not in ORDER_TYPES:
        raise ServiceError(f"order_type must be ASC or DESC (upper case), not '{order_type}'.")
    field = orders[order]
    ordering = (field if order_type == "ASC" else f"-{field}", "pk")
    rows = queryset.order_by(*ordering)
    rows = rows[offset : offset + limit] if limit is not None else rows[offset:]
    meta = {"limit": limit, "offset": offset, "order": order, "order_type": order_type}
    return rows, meta


def ids_first(queryset: QuerySet, rows: QuerySet) -> QuerySet:
    """The rows of a sliced page, found by their ids first (see `page_by_ids` of the pages):
    the ids come from an index alone, then the joined rows are read by primary key."""
    ids = list(rows.values_list("pk", flat=True))
    return queryset.filter(pk__in_array=ids).order_by(*rows.query.order_by)


def listed(view: CoprView, queryset: QuerySet, shapes, *, orders: dict[str, str]):
    """A list whose `shapes(rows)` yields the items: one JSON answer for a page, streamed
    without a limit (Copr answers every row then: 8,000 builds are megabytes of JSON)."""
    rows, meta = page_of(view, queryset, orders=orders)
    if meta["limit"] is not None:
        page = {"items": list(shapes(ids_first(queryset, rows))), "meta": meta}
        return HttpResponse(orjson.dumps(page), content_type="application/json")
    return StreamingHttpResponse(
        streamed_items(shapes(rows), meta), content_type="application/json"
    )


def streamed_items(items, meta: dict):
    """`{"items": [...], "meta": {...}}` in pieces of about a hundred items.

    orjson, because encoding is a third of the CPU of a list of thousands of items."""
    yield b'{"items":['
    separator = b""
    items = iter(items)
    while batch := list(islice(items, 100)):
        yield separator + b",".join(orjson.dumps(item) for item in batch)
        separator = b","
    yield b'],"meta":' + orjson.dumps(meta) + b"}"
