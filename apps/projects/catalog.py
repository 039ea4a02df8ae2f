"""The chroot catalog shipped with coprsite, named as Copr names it: current Fedora (with
i386, as Copr builds it), rawhide, EPEL and CentOS Stream, plus the releases that reached
their end of life (Fedora, EPEL, CentOS Stream), kept as inactive EOL chroots so scripts
naming them get Copr's answers."""

ARCHES = ("x86_64", "aarch64", "ppc64le", "s390x")
# Copr still builds Fedora for 32-bit x86 (the multilib twin of x86_64); nothing else.
FEDORA_ARCHES = (*ARCHES, "i386")
FEDORA_RELEASES = ("43", "44", "45")
FEDORA_RAWHIDE_NUMBER = "46"
EPEL_RELEASES = ("8", "9", "10")
CENTOS_STREAM_RELEASES = ("9", "10")
# Releases past their end of life that Copr still lists (in their EOL state), with the
# arches Copr had for them.
EOL_FEDORA_RELEASES = ("39", "40", "41", "42")
EOL_EPEL_ARCHES = {
    "6": ("x86_64", "i386"),
    "7": ("x86_64", "aarch64", "ppc64le"),
}
EOL_CENTOS_STREAM_ARCHES = {"8": ("x86_64", "aarch64", "ppc64le")}


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


def entry(release: dict, arch: str, **state) -> dict:
    name = f"{release['os_release']}-{release['os_version']}-{arch}"
    return {**release, "arch": arch, "name": name, "mock_config": name, **state}


def catalog_entries() -> list[dict]:
    """Every chroot of the catalog, each a dict of Chroot fields."""
    fedoras = [fedora(version, version) for version in FEDORA_RELEASES]
    fedoras.append(fedora("rawhide", FEDORA_RAWHIDE_NUMBER))
    others = [epel(version) for version in EPEL_RELEASES]
    others += [centos_stream(version) for version in CENTOS_STREAM_RELEASES]
    entries = [entry(release, arch) for release in fedoras for arch in FEDORA_ARCHES]
    entries += [entry(release, arch) for release in others for arch in ARCHES]
    return entries + end_of_life_entries()


def end_of_life_entries() -> list[dict]:
    """Chroots Copr keeps after their end of life: not offered, refused for builds."""
    releases = [(fedora(version, version), FEDORA_ARCHES) for version in EOL_FEDORA_RELEASES]
    releases += [(epel(version), arches) for version, arches in EOL_EPEL_ARCHES.items()]
    releases += [
        (centos_stream(version), arches) for version, arches in EOL_CENTOS_STREAM_ARCHES.items()
    ]
    return [
        entry(release, arch, is_active=False, end_of_life=True)
        for release, arches in releases
        for arch in arches
    ]
