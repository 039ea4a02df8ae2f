"""Read RPM and SRPM headers with `rpmfile`: never executes anything from the package."""

from __future__ import annotations

import hashlib
import re
import struct
from pathlib import Path
from typing import Any, BinaryIO

import rpmfile

_LEAD_MAGIC = b"\xed\xab\xee\xdb"
_LEAD_SIZE = 96
_HEADER_MAGIC = b"\x8e\xad\xe8"
_HEADER_INTRO_SIZE = 16
_INDEX_ENTRY_SIZE = 16
# Sanity bounds for a header's index and data store; real ones are far smaller, and a
# hostile file must not make us read gigabytes into memory.
_MAX_INDEX_ENTRIES = 1 << 16
_MAX_STORE_BYTES = 256 << 20
# Signature header tags: size of main header + payload (32 and 64 bit variants).
_SIGTAG_SIZE = 1000
_SIGTAG_LONGSIZE = 270
_RPM_INT32, _RPM_INT64 = 4, 5
# RPM's PGPHASHALGO numbers, as used by the payload digest tag.
_DIGEST_ALGORITHMS = {1: "md5", 2: "sha1", 8: "sha256", 9: "sha384", 10: "sha512", 11: "sha224"}
# What may appear in N, V and R: they become file names in the results directory.
_NVR_PART = re.compile(r"^[A-Za-z0-9._+~^-]+$")
_READ_CHUNK = 1 << 20


class BadRpm(ValueError):
    """The file is not a usable RPM package; the message says why, for a person."""


class NotAnSrpm(BadRpm):
    """The file is not a usable source RPM; the message says why, for a person."""


def _header_extent(
    stream: BinaryIO, offset: int, file_size: int, name: str, error: type[BadRpm]
) -> int:
    """Check the header at `offset` and return the offset just past it."""
    if offset + _HEADER_INTRO_SIZE > file_size:
        raise error(f"{name} is truncated: {file_size} bytes, it ends inside its headers")
    stream.seek(offset)
    intro = stream.read(_HEADER_INTRO_SIZE)
    if len(intro) < _HEADER_INTRO_SIZE or intro[:3] != _HEADER_MAGIC:
        raise error(f"{name} is damaged or truncated: no RPM header at byte {offset}")
    entries, store_size = (int(value) for value in struct.unpack("!ii", intro[8:16]))
    if not (0 < entries <= _MAX_INDEX_ENTRIES and 0 <= store_size <= _MAX_STORE_BYTES):
        raise error(f"{name} is damaged: its header has an impossible size")
    return offset + _HEADER_INTRO_SIZE + entries * _INDEX_ENTRY_SIZE + store_size


def _signed_size(stream: BinaryIO, offset: int) -> int | None:
    """Size of main header plus payload as recorded in the signature header, if present."""
    stream.seek(offset + 8)
    entries, _ = struct.unpack("!ii", stream.read(8))
    index = stream.read(entries * _INDEX_ENTRY_SIZE)
    store_start = offset + _HEADER_INTRO_SIZE + entries * _INDEX_ENTRY_SIZE
    for position in range(0, len(index), _INDEX_ENTRY_SIZE):
        tag, kind, data_offset, _count = struct.unpack("!iiii", index[position : position + 16])
        if (tag, kind) in ((_SIGTAG_SIZE, _RPM_INT32), (_SIGTAG_LONGSIZE, _RPM_INT64)):
            stream.seek(store_start + data_offset)
            width = 4 if kind == _RPM_INT32 else 8
            raw = stream.read(width)
            if len(raw) == width:
                return int.from_bytes(raw, "big")
    return None


def _check_layout(stream: BinaryIO, name: str, error: type[BadRpm]) -> int:
    """Validate lead and headers against the file size; return where the main header starts."""
    file_size = stream.seek(0, 2)
    stream.seek(0)
    lead = stream.read(_LEAD_SIZE)
    if len(lead) < _LEAD_SIZE or lead[:4] != _LEAD_MAGIC:
        raise error(f"{name} is not an RPM file")
    signature_end = _header_extent(stream, _LEAD_SIZE, file_size, name, error)
    # The main header starts at the next multiple of 8 after the signature header.
    main_start = signature_end + (-signature_end % 8)
    main_end = _header_extent(stream, main_start, file_size, name, error)
    signed = _signed_size(stream, _LEAD_SIZE)
    expected = main_start + signed if signed is not None else main_end
    if file_size < expected or file_size < main_end:
        raise error(f"{name} is truncated: {file_size} bytes, its header says {expected}")
    if signed is not None and file_size != expected:
        raise error(f"{name} is damaged: {file_size} bytes, its header says {expected}")
    return main_start


def _check_payload_digest(
    stream: BinaryIO, headers: dict[Any, Any], data_offset: int, name: str, error: type[BadRpm]
) -> None:
    digests = headers.get("payloaddigest")
    algorithm = _DIGEST_ALGORITHMS.get(headers.get("payloaddigestalgo") or 0)
    if not digests or algorithm is None:
        return  # packages from before rpm 4.14 carry no payload digest
    expected = (digests[0] if isinstance(digests, list) else digests).decode("ascii", "replace")
    digest = hashlib.new(algorithm)
    stream.seek(data_offset)
    for chunk in iter(lambda: stream.read(_READ_CHUNK), b""):
        digest.update(chunk)
    if digest.hexdigest() != expected:
        raise error(f"{name} is damaged: its payload does not match the digest in its header")


def _read_headers(path: Path, error: type[BadRpm]) -> dict[Any, Any]:
    name = path.name
    try:
        stream = open(path, "rb")  # noqa: SIM115 - closed below, RPMFile does not own it
    except OSError as exc:
        raise error(f"{name} cannot be read: {exc.strerror}") from exc
    with stream:
        _check_layout(stream, name, error)
        stream.seek(0)
        try:
            package = rpmfile.RPMFile(fileobj=stream)
            headers = dict(package.headers)
            data_offset = package.data_offset
        except Exception as exc:  # rpmfile raises anything from struct errors to asserts
            raise error(f"{name} is damaged: its header cannot be parsed") from exc
        _check_payload_digest(stream, headers, data_offset, name, error)
    return headers


def _text(value: Any) -> str:
    if isinstance(value, list):
        value = value[0] if value else b""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def _text_list(value: Any) -> list[str]:
    if value is None:
        return []
    values = value if isinstance(value, list | tuple) else [value]
    return [_text(item) for item in values]


def _epoch(headers: dict[Any, Any]) -> int | None:
    # rpmfile names the Epoch tag (1003) by its historical name, "serial".
    value = headers.get("serial")
    if isinstance(value, tuple):
        value = value[0]
    return int(value) if value is not None else None


def _is_source(headers: dict[Any, Any]) -> bool:
    # rpm's own rule (headerIsSource): a binary package names the SRPM it came from.
    return "sourcerpm" not in headers


def _nevr(headers: dict[Any, Any], name: str, error: type[BadRpm]) -> dict[str, Any]:
    nevr: dict[str, Any] = {
        "name": _text(headers.get("name")),
        "epoch": _epoch(headers),
        "version": _text(headers.get("version")),
        "release": _text(headers.get("release")),
    }
    for key in ("name", "version", "release"):
        if not _NVR_PART.match(nevr[key]):
            raise error(f"{name} has an invalid package {key}: {nevr[key]!r}")
    return nevr


def read_srpm_header(path: str | Path) -> dict[str, Any]:
    """Name, epoch, version, release and the arch tags of a source RPM.

    `buildarch` comes from the BuildArch tag (e.g. ["noarch"]); an SRPM's own arch field
    only says where it was built. Raises NotAnSrpm for anything but an intact SRPM.
    """
    path = Path(path)
    headers = _read_headers(path, NotAnSrpm)
    if not _is_source(headers):
        raise NotAnSrpm(f"{path.name} is a binary RPM, not a source RPM")
    return {
        "filename": path.name,
        **_nevr(headers, path.name, NotAnSrpm),
        "exclusivearch": _text_list(headers.get("exclusivearch")),
        "excludearch": _text_list(headers.get("excludearch")),
        "buildarch": _text_list(headers.get("buildarchs")),
    }


def read_rpm_nevra(path: str | Path) -> dict[str, Any]:
    """Name, epoch, version, release and arch ("src" for a source RPM) of any RPM."""
    path = Path(path)
    headers = _read_headers(path, BadRpm)
    arch = "src" if _is_source(headers) else _text(headers.get("arch"))
    return {**_nevr(headers, path.name, BadRpm), "arch": arch}


# RPMSENSE_* comparison bits of a dependency's flags.
_SENSE_LESS, _SENSE_GREATER, _SENSE_EQUAL = 0x02, 0x04, 0x08


def _operator(flags: int) -> str:
    less, greater, equal = flags & _SENSE_LESS, flags & _SENSE_GREATER, flags & _SENSE_EQUAL
    return ("<" if less else "") + (">" if greater else "") + ("=" if equal else "")


def srpm_build_requires(path: str | Path) -> list[str]:
    """The BuildRequires of a source RPM as rpm writes them ("make >= 4"), rpmlib() excluded."""
    path = Path(path)
    headers = _read_headers(path, NotAnSrpm)
    names = _text_list(headers.get("requirename"))
    versions = _text_list(headers.get("requireversion"))
    flags = headers.get("requireflags") or ()
    flag_list = list(flags) if isinstance(flags, tuple) else [flags]
    requires = []
    for index, name in enumerate(names):
        # rpmlib(...) names features of rpm itself, not packages to install.
        if name.startswith("rpmlib("):
            continue
        version = versions[index] if index < len(versions) else ""
        operator = _operator(flag_list[index]) if index < len(flag_list) else ""
        requires.append(f"{name} {operator} {version}" if version and operator else name)
    return requires


# A spec is a few kilobytes; the results directory keeps it, so a huge one is refused.
MAX_SPEC_BYTES = 1 << 20


def read_srpm_spec(path: str | Path) -> tuple[str, bytes] | None:
    """(file name, text) of the spec inside a source RPM, or None when it has no usable one.

    Read from the payload by `rpmfile` (nothing of the package runs); the SRPM's header
    was checked by read_srpm_header before.
    """
    try:
        with rpmfile.open(str(path)) as package:
            for member in package.getmembers():
                name = Path(member.name).name
                if name.endswith(".spec") and name == member.name.lstrip("./"):
                    if member.size > MAX_SPEC_BYTES:
                        return None
                    extracted = package.extractfile(member)
                    return name, extracted.read(MAX_SPEC_BYTES + 1)[:MAX_SPEC_BYTES]
    except Exception:  # rpmfile raises anything from struct errors to asserts
        return None
    return None
