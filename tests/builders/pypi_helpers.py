"""A fake PyPI in a directory: JSON API, simple index, sdist, wheel and PEP 658 metadata.

Serve the directory with any static HTTP server; `base_url` must be where it is served,
since the JSON API names the files by absolute URL as PyPI does.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from pathlib import Path


def core_metadata(name: str, version: str) -> str:
    return (
        "Metadata-Version: 2.4\n"
        f"Name: {name}\n"
        f"Version: {version}\n"
        f"Summary: The tiny {name} test package\n"
        f"Home-page: https://example.org/{name}\n"
        "Author: Tester\n"
        "License-Expression: MIT\n"
        "Requires-Python: >=3.8\n"
        "\n"
        f"The tiny {name} package, served by a fake PyPI.\n"
    )


def _entry(base_url: str, path: str, data: bytes, packagetype: str) -> dict:
    return {
        "filename": path.rsplit("/", 1)[-1],
        "packagetype": packagetype,
        "python_version": "source" if packagetype == "sdist" else "py3",
        "url": f"{base_url}/{path}",
        "digests": {
            "md5": hashlib.md5(data).hexdigest(),  # noqa: S324 - PyPI's field, not security
            "sha256": hashlib.sha256(data).hexdigest(),
        },
        "md5_digest": hashlib.md5(data).hexdigest(),  # noqa: S324 - as above
        "size": len(data),
        "yanked": False,
    }


def sdist(name: str, version: str) -> bytes:
    """A setuptools sdist: PKG-INFO, pyproject.toml and one module."""
    top = f"{name}-{version}"
    files = {
        "PKG-INFO": core_metadata(name, version),
        "pyproject.toml": (
            '[build-system]\nrequires = ["setuptools>=61"]\n'
            'build-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "{version}"\n'
            f'description = "The tiny {name} test package"\nlicense = {{text = "MIT"}}\n'
        ),
        # pyp2rpm reads the metadata from setup.py only.
        "setup.py": (
            "from setuptools import setup\n\n"
            f'setup(name="{name}", version="{version}", license="MIT", packages=["{name}"],\n'
            f'      description="The tiny {name} test package", url="https://example.org/{name}")\n'
        ),
        f"{name}/__init__.py": f'__version__ = "{version}"\n',
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for relative, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{top}/{relative}")
            info.size = len(data)
            info.mode = 0o644
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def wheel(name: str, version: str) -> bytes:
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f'__version__ = "{version}"\n',
        f"{dist_info}/METADATA": core_metadata(name, version),
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{dist_info}/top_level.txt": f"{name}\n",
    }
    record = "".join(f"{path},,\n" for path in files) + f"{dist_info}/RECORD,,\n"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for path, text in {**files, f"{dist_info}/RECORD": record}.items():
            archive.writestr(path, text)
    return buffer.getvalue()


def publish(directory: Path, base_url: str, name: str, version: str) -> None:
    """Lay out `name` `version` under `directory` as PyPI's JSON API and simple index show it."""
    base_url = base_url.rstrip("/")
    sdist_path = f"packages/source/{name[0]}/{name}/{name}-{version}.tar.gz"
    wheel_path = f"packages/py3/{name[0]}/{name}/{name}-{version}-py3-none-any.whl"
    sdist_data, wheel_data = sdist(name, version), wheel(name, version)
    for path, data in (
        (sdist_path, sdist_data),
        (wheel_path, wheel_data),
        (wheel_path + ".metadata", core_metadata(name, version).encode()),
    ):
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(data)
    urls = [
        _entry(base_url, sdist_path, sdist_data, "sdist"),
        _entry(base_url, wheel_path, wheel_data, "bdist_wheel"),
    ]
    info = {
        "name": name,
        "version": version,
        "summary": f"The tiny {name} test package",
        "description": f"The tiny {name} package, served by a fake PyPI.",
        "home_page": f"https://example.org/{name}",
        "project_urls": {"Homepage": f"https://example.org/{name}"},
        "license": "MIT",
        "license_expression": "MIT",
        "classifiers": ["Programming Language :: Python :: 3"],
        "requires_dist": None,
        "requires_python": ">=3.8",
        "author": "Tester",
        "author_email": "tester@example.org",
    }
    project = directory / "pypi" / name
    (project / version).mkdir(parents=True, exist_ok=True)
    (project / version / "json").write_text(json.dumps({"info": info, "urls": urls}))
    (project / "json").write_text(
        json.dumps({"info": info, "urls": urls, "releases": {version: urls}})
    )
    links = "".join(
        f'<a href="{entry["url"]}#sha256={entry["digests"]["sha256"]}">{entry["filename"]}</a>\n'
        for entry in urls
    )
    simple = directory / "simple" / name
    simple.mkdir(parents=True, exist_ok=True)
    (simple / "index.html").write_text(f"<!DOCTYPE html><html><body>\n{links}</body></html>\n")
