"""The chroot catalog shipped with coprsite: current Fedora, rawhide, EPEL and CentOS Stream."""

ARCHES = ("x86_64", "aarch64", "ppc64le", "s390x")
FEDORA_RELEASES = ("43", "44", "45")
FEDORA_RAWHIDE_NUMBER = "46"
EPEL_RELEASES = ("8", "9", "10")
CENTOS_STREAM_RELEASES = ("9", "10")


def fedora(version: str, number: str) -> dict:
    branch = "rawhide" if version == "rawhide" else f"f{number}"
    return {
        "os_release": "fedora",
        "os_version": version,
        "macros": {"dist": f".fc{number}", "fedora": number},
        "distgit_branch": branch,
    }


def epel(version: str) -> dict:
    return {
        "os_release": "epel",
        "os_version": version,
        "macros": {"dist": f".el{version}", "rhel": version, "epel": version},
        "distgit_branch": f"epel{version}",
    }


def centos_stream(version: str) -> dict:
    return {
        "os_release": "centos-stream",
        "os_version": version,
        "macros": {"dist": f".el{version}", "rhel": version, "centos": version},
        "distgit_branch": f"c{version}s",
    }


def catalog_entries() -> list[dict]:
    """Every chroot of the catalog, each a dict of Chroot fields."""
    releases = [fedora(version, version) for version in FEDORA_RELEASES]
    releases.append(fedora("rawhide", FEDORA_RAWHIDE_NUMBER))
    releases += [epel(version) for version in EPEL_RELEASES]
    releases += [centos_stream(version) for version in CENTOS_STREAM_RELEASES]
    entries = []
    for release in releases:
        for arch in ARCHES:
            name = f"{release['os_release']}-{release['os_version']}-{arch}"
            entries.append({**release, "arch": arch, "name": name, "mock_config": name})
    return entries
