"""Uploaded SRPM or spec: the portal stored the file; a spec becomes an SRPM in the sandbox."""

from __future__ import annotations

from typing import Any


def makes_srpm(source: dict[str, Any]) -> bool:
    return str(source.get("path", "")).endswith(".spec")


def prepare(helper: Any, source: dict[str, Any]) -> None:
    helper.spec_file(path=str(source["path"]))
