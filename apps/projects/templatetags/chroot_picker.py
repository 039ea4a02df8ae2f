"""The chroot picker: one table row per distribution release, one column per architecture.

Copr's forms lay chroots out this way; a flat list of 36 checkboxes is hard to scan.
Architectures no enabled builder pool serves are marked, since a build there cannot start.
"""

from django import template

from apps.fleet.selectors import served_arches
from apps.projects.catalog import FEDORA_ARCHES as ARCHES
from apps.projects.models import Chroot

register = template.Library()
DISTRIBUTION_NAMES = {
    "fedora": "Fedora",
    "epel": "EPEL",
    "centos-stream": "CentOS Stream",
    "rhel": "RHEL",
    "opensuse-leap": "openSUSE Leap",
    "opensuse-tumbleweed": "openSUSE Tumbleweed",
    "mageia": "Mageia",
}


def version_order(version: str) -> tuple:
    # Numbers in numeric order (epel-8 before epel-10), named releases (rawhide) after them.
    return (0, int(version), "") if version.isdigit() else (1, 0, version)


def arch_order(arch: str) -> tuple:
    return (ARCHES.index(arch), "") if arch in ARCHES else (len(ARCHES), arch)


@register.inclusion_tag("projects/_chroot_picker.html")
def chroot_picker(field):
    """Context for a MultipleChoiceField of chroot names (`field` is the bound field)."""
    names = [str(value) for value, _ in field.field.choices]
    chroots = {c.name: c for c in Chroot.objects.filter(name__in=names)}
    selected = {str(value) for value in (field.value() or [])}
    served = served_arches()
    arches = sorted({c.arch for c in chroots.values()}, key=arch_order)
    releases: dict[tuple, dict] = {}
    for chroot in chroots.values():
        row = releases.setdefault(
            (chroot.os_release, version_order(chroot.os_version)),
            {"name_release": chroot.name_release, "cells": {}},
        )
        row["cells"][chroot.arch] = {
            "name": chroot.name,
            "arch": chroot.arch,
            "id": f"{field.auto_id}_{chroot.name}",
            "checked": chroot.name in selected,
            "served": chroot.arch in served,
            "end_of_life": chroot.end_of_life,
        }
    distributions: list[dict] = []
    # Fedora first, as on Copr's forms; then the other distributions by name.
    in_order = sorted(releases.items(), key=lambda item: (item[0][0] != "fedora", item[0]))
    for (os_release, _), row in in_order:
        if not distributions or distributions[-1]["os_release"] != os_release:
            title = DISTRIBUTION_NAMES.get(os_release, os_release)
            distributions.append({"os_release": os_release, "title": title, "rows": []})
        row["cells"] = [row["cells"].get(arch) for arch in arches]
        distributions[-1]["rows"].append(row)
    return {
        "field": field,
        "arches": [{"name": arch, "served": arch in served} for arch in arches],
        "distributions": distributions,
        "any_unserved": any(arch not in served for arch in arches),
    }
