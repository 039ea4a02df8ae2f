"""SRPM or spec URL: the runner downloads it; a spec becomes an SRPM in the sandbox."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit


def makes_srpm(source: dict[str, Any]) -> bool:
    return urlsplit(str(source.get("url", ""))).path.endswith(".spec")


def prepare(helper: Any, source: dict[str, Any]) -> None:
    helper.spec_file(url=str(source["url"]))
