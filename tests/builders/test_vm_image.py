"""The VM image's package cache (builders/vm/image.py), without building an image.

A full build is covered by tests/builders/test_vm.py and tests/e2e/test_vm_pools.py, which
use the cached image; here the cache's own steps run on real directories.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builders.arches import guest_arch
from builders.vm import image
from builders.vm.image import APT_ARCHIVES, keep_debs, mmdebstrap_command


def test_a_build_makes_its_debs_the_cache_and_drops_the_old_ones(tmp_path: Path) -> None:
    cache = tmp_path / "debs"
    cache.mkdir()
    (cache / "gcc-12_12.2.0-14_amd64.deb").write_bytes(b"old")
    downloaded = tmp_path / "building" / "debs"
    (downloaded / "partial").mkdir(parents=True)  # apt's, as sync-out copies it
    (downloaded / "lock").touch()
    (downloaded / "gcc-12_12.2.0-14+deb12u1_amd64.deb").write_bytes(b"new")

    keep_debs(downloaded, cache)

    assert sorted(path.name for path in cache.iterdir()) == ["gcc-12_12.2.0-14+deb12u1_amd64.deb"]
    assert not downloaded.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["building", "debs"]


def test_mmdebstrap_takes_the_cache_in_and_hands_every_deb_back_out(tmp_path: Path) -> None:
    cache, out = tmp_path / "cache dir", tmp_path / "out"
    argv = mmdebstrap_command(
        tmp_path / "tree",
        arch=guest_arch("x86_64"),
        suite="bookworm",
        mirror="http://mirror",
        debs=cache,
        out=out,
    )

    sync_in = argv.index(f"--setup-hook=sync-in '{cache}' {APT_ARCHIVES}")
    autoclean = argv.index('--customize-hook=chroot "$1" apt-get autoclean -qq')
    sync_out = argv.index(f"--customize-hook=sync-out {APT_ARCHIVES} {out}")
    assert sync_in < autoclean < sync_out  # what the mirror dropped is not kept
    # mmdebstrap would otherwise delete the essential packages it downloaded itself.
    assert "--skip=essential/unlink" in argv
    assert argv[-3:] == ["bookworm", str(tmp_path / "tree"), "http://mirror"]


@pytest.mark.parametrize(
    "arch, debian, meta",
    [("x86_64", "amd64", "linux-image-amd64"), ("aarch64", "arm64", "linux-image-arm64")],
)
def test_the_kernel_is_downloaded_for_the_guests_arch_and_never_installed_in_the_tree(
    tmp_path: Path, arch: str, debian: str, meta: str
) -> None:
    argv = mmdebstrap_command(
        tmp_path / "tree",
        arch=guest_arch(arch),
        suite="bookworm",
        mirror="http://m",
        debs=tmp_path,
        out=tmp_path,
    )

    assert f"--architectures={debian}" in argv
    (include,) = [arg for arg in argv if arg.startswith("--include=")]
    # Installing it would set up initramfs-tools and udev under emulation, for nothing.
    assert "linux-image" not in include
    (download,) = [arg for arg in argv if "apt-get download" in arg]
    assert download.startswith("--customize-hook=")
    assert f"apt-cache depends {meta}" in download
    # Downloaded before the tree's .deb files are handed out, so the cache keeps it too.
    assert argv.index(download) < next(i for i, a in enumerate(argv) if "sync-out" in a)


@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root, as the image does")
@pytest.mark.parametrize("needed_mib, in_memory", [(0, True), (1 << 40, False)])
def test_the_tree_is_made_in_memory_when_the_host_can_spare_it_and_removed_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, needed_mib: int, in_memory: bool
) -> None:
    monkeypatch.setattr(image, "TREE_IN_MEMORY_MIB", needed_mib)
    tree = tmp_path / "tree"

    with pytest.raises(RuntimeError), image.scratch_tree(tree):
        (tree / "usr").mkdir()
        assert os.path.ismount(tree) == in_memory
        raise RuntimeError("a step failed")  # the tree goes all the same

    assert not tree.exists()
