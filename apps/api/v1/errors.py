"""One error shape for /api/v1: `{"error": message}`, plus `"fields"` for invalid input."""

from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

from apps.core.errors import InvalidForm, ServiceError

NON_FIELD_KEYS = ("non_field_errors",)


def api_exception_handler(exc, context):
    """Service errors keep their status; DRF errors keep theirs; every body names the problem."""
    if isinstance(exc, InvalidForm):
        set_rollback()
        return Response(validation_body(exc.errors), status=exc.status)
    if isinstance(exc, ServiceError):
        set_rollback()
        return Response({"error": exc.message}, status=exc.status)
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = validation_body(exc.detail)
    else:
        response.data = {"error": " ".join(message for _, message in flat_errors(response.data))}
    return response


def validation_body(detail) -> dict:
    fields = detail if isinstance(detail, dict) else {NON_FIELD_KEYS[0]: detail}
    lines = [f"{path}: {message}" if path else message for path, message in flat_errors(fields)]
    return {"error": "\n".join(lines), "fields": fields}


def flat_errors(detail, path: str = ""):
    """(`field.index` path, message) pairs of a nested DRF error detail."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            inner = "" if key in NON_FIELD_KEYS or key == "detail" else str(key)
            yield from flat_errors(value, f"{path}.{inner}" if path and inner else path or inner)
    elif isinstance(detail, list):
        for item in detail:
            yield from flat_errors(item, path)
    else:
        yield path, str(detail)
