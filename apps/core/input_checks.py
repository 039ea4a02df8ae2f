"""What text from outside may hold: no NUL, no lone surrogate, JSON at most 64 levels deep."""

import json
import re

import orjson

from apps.core.errors import InvalidForm, ServiceError
from apps.core.names import NUL_MESSAGE

# Far deeper than any request of the APIs or a forge's webhook (a handful of levels), and far
# below Python's recursion limit (1000), which serializers, json.dumps and JSON model fields
# reach by recursing over what the decoder returns.
MAX_JSON_DEPTH = 64
SURROGATE_MESSAGE = (
    "Lone surrogates (\\ud800 to \\udfff without their pair) are not characters; send UTF-8 text."
)
DEPTH_MESSAGE = f"The JSON is nested more than {MAX_JSON_DEPTH} levels deep."
SURROGATES = re.compile("[\ud800-\udfff]")
# The key under which a problem of a JSON body that is not an object is reported.
WHOLE_BODY = "body"


class NotJSON(ServiceError):
    """The text is not JSON at all (the caller knows whether it was meant to be)."""


def text_problem(text: str) -> str | None:
    """Why a text cannot be taken: NUL cannot be stored in PostgreSQL, and a lone surrogate
    cannot even be encoded as UTF-8 to be sent to the database or rendered."""
    if "\x00" in text:
        return NUL_MESSAGE
    if not text.isascii() and SURROGATES.search(text):
        return SURROGATE_MESSAGE
    return None


def shown(text: str) -> str:
    """A field name fit for a message: NUL written as \\u0000, a lone surrogate as `?`."""
    return text.replace("\x00", "\\u0000").encode("utf-8", "replace").decode()


def json_loads(raw: bytes | str):
    """JSON from outside, decoded and checked.

    orjson decodes natively (no Python recursion) and refuses lone surrogates and nesting
    past 1024 levels itself; the walk below refuses more than MAX_JSON_DEPTH levels before
    any recursive code sees the value, and NUL in any key or text (InvalidForm, per field).
    """
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise NotJSON(not_json_message(str(error))) from error
    problems, has_float = inspected(value)
    if problems:
        raise InvalidForm(problems)
    # orjson makes a float of an integer beyond 64 bits; the standard library keeps it the
    # integer the views always had (and the depth is now known to be safe for its recursion).
    return json.loads(raw) if has_float else value


def not_json_message(reason: str) -> str:
    message = f"The request body is not valid JSON: {reason}."
    # orjson's reasons are terse; these two are the ones hostile input aims at.
    if "surrogate" in reason:
        return f"{message} {SURROGATE_MESSAGE}"
    if "depth limit" in reason:
        return f"{message} {DEPTH_MESSAGE}"
    return message


def inspected(value) -> tuple[dict[str, list[str]], bool]:
    """({field: [problem]}, whether a float is in it) of a decoded JSON value; the fields
    are the top-level keys of an object."""
    if not isinstance(value, dict):
        problem, has_float = walked(value, depth=1)
        return ({WHOLE_BODY: [problem]} if problem else {}), has_float
    problems: dict[str, list[str]] = {}
    any_float = False
    for key, item in value.items():
        problem, has_float = walked(item, depth=2)
        problem = text_problem(key) or problem
        any_float |= has_float
        if problem:
            problems[shown(key)] = [problem]
    return problems, any_float


def walked(value, *, depth: int) -> tuple[str | None, bool]:
    """(The first problem, whether a float is in it) of a value at `depth` and below, walked
    without recursion."""
    pending = [(value, depth)]
    has_float = False
    while pending:
        item, level = pending.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                return problem, has_float
        elif isinstance(item, float):
            has_float = True
        elif isinstance(item, dict | list):
            if level > MAX_JSON_DEPTH:
                return DEPTH_MESSAGE, has_float
            if isinstance(item, dict):
                for key in item:
                    problem = text_problem(key)
                    if problem:
                        return problem, has_float
                item = item.values()
            pending.extend((inner, level + 1) for inner in item)
    return None, has_float


def form_problems(fields) -> dict[str, list[str]]:
    """{field: [problem]} of (name, text) pairs: a query string, a form, cookies, headers."""
    problems: dict[str, list[str]] = {}
    for name, text in fields:
        problem = text_problem(name) or text_problem(text)
        if problem:
            problems.setdefault(shown(name), [problem])
    return problems
