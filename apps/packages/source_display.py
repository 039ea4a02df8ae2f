"""A source's settings (Copr's source_json) as labelled lines for the build and package pages."""

import json

# How the pages name Copr's source_json keys; others are shown with their own name.
SOURCE_LABELS = {
    "type": "Repository type",
    "clone_url": "Clone URL",
    "committish": "Committish",
    "subdirectory": "Subdirectory",
    "spec": "Spec file",
    "srpm_build_method": "SRPM build method",
    "url": "URL",
    "pkg": "File",
    "distgit": "DistGit instance",
    "namespace": "Namespace",
    "package_name": "Package",
    "pypi_package_name": "PyPI package",
    "pypi_package_version": "PyPI version",
    "gem_name": "Gem",
    "script": "Script",
    "builddeps": "Build dependencies",
    "chroot": "Script chroot",
    "resultdir": "Result directory",
}
# Internal bookkeeping of uploads and webhooks, not something the user chose.
HIDDEN_SOURCE_KEYS = {"tmp", "hook_data"}
URL_KEYS = {"clone_url", "url"}
# Shown as a block of text: a custom method's script.
PREFORMATTED_KEYS = {"script"}


def source_items(source_json: dict, *, commit: str = "") -> list[dict]:
    """The settings in Copr's key order, then the commit a build's source task checked out."""
    items = []
    for key, value in source_json.items():
        if key in HIDDEN_SOURCE_KEYS or value in ("", None, [], {}):
            continue
        text = value if isinstance(value, str) else json.dumps(value)
        link = text if key in URL_KEYS and text.startswith(("https://", "http://")) else None
        items.append(
            {
                "label": SOURCE_LABELS.get(key, key.replace("_", " ").capitalize()),
                "value": text,
                "url": link,
                "preformatted": key in PREFORMATTED_KEYS,
            }
        )
    if commit:
        items.append({"label": "Commit", "value": commit, "url": None, "preformatted": False})
    return items
