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
# An integer orjson may not hold exactly (beyond 64 bits); texts of digits match too: harmless.
LONG_NUMBER = re.compile(rb"\d{19}")
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

    orjson decodes natively (no Python recursion) and refuses lone surrogates, control
    characters and nesting past 1024 levels itself. What is left is checked before any
    recursive code sees the value: more than MAX_JSON_DEPTH levels, and NUL (written
    `\\u0000`) in a key or a text, each an InvalidForm naming the top-level field.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")  # orjson refuses the surrogates it keeps
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise NotJSON(not_json_message(str(error))) from error
    # Walked only when it could hold a problem: a body of a few brackets cannot be too deep.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH or b"\\u0000" in raw:
        problems = json_problems(value)
        if problems:
            raise InvalidForm(problems)
    # orjson makes a float of an integer beyond 64 bits; the standard library keeps it the
    # integer the views always had (its recursion is safe: the depth is known to be small).
    return json.loads(raw) if LONG_NUMBER.search(raw) else value


def not_json_message(reason: str) -> str:
    message = f"The request body is not valid JSON: {reason}."
    # orjson's reasons are terse; these two are the ones hostile input aims at.
    if "surrogate" in reason:
        return f"{message} {SURROGATE_MESSAGE}"
    if "depth limit" in reason:
        return f"{message} {DEPTH_MESSAGE}"
    return message


def json_problems(value) -> dict[str, list[str]]:
    """{field: [problem]} of a decoded JSON value; the fields are an object's top-level keys."""
    if not isinstance(value, dict | list):
        problem = text_problem(value) if isinstance(value, str) else None
        return {WHOLE_BODY: [problem]} if problem else {}
    if isinstance(value, list):
        problem = container_problem(value, depth=1)
        return {WHOLE_BODY: [problem]} if problem else {}
    problems = {}
    for key, item in value.items():
        problem = text_problem(key)
        if not problem and isinstance(item, str):
            problem = text_problem(item)
        elif not problem and isinstance(item, dict | list):
            problem = container_problem(item, depth=2)
        if problem:
            problems[shown(key)] = [problem]
    return problems


def container_problem(container: dict | list, *, depth: int) -> str | None:
    """The first problem of a list or object at `depth`, and of all within it, walked
    without recursion (one loop step per value: a hostile body may hold millions)."""
    pending = [(container, depth)]
    while pending:
        current, level = pending.pop()
        if level > MAX_JSON_DEPTH:
            return DEPTH_MESSAGE
        if type(current) is dict:
            for key in current:
                if "\x00" in key:
                    return NUL_MESSAGE
            current = current.values()
        for item in current:
            kind = type(item)
            if kind is str:
                if "\x00" in item:
                    return NUL_MESSAGE
            elif kind is list or kind is dict:
                if item:
                    pending.append((item, level + 1))
                elif level + 1 > MAX_JSON_DEPTH:
                    return DEPTH_MESSAGE
    return None


def form_problems(fields) -> dict[str, list[str]]:
    """{field: [problem]} of (name, text) pairs: a query string, a form, cookies, headers."""
    problems: dict[str, list[str]] = {}
    for name, text in fields:
        problem = text_problem(name) or text_problem(text)
        if problem:
            problems.setdefault(shown(name), [problem])
    return problems
