"""Names follow Copr's rules (ASCII only), and paths made of names stay in their owner's tree."""

import pytest
from django.core.exceptions import ValidationError

from apps.core import names
from apps.core.paths import PathEscape, confined, confined_rmtree


@pytest.mark.parametrize(
    ("name", "valid"),
    [("hello", True), ("my_proj.1-2", True), ("..", False), (".", False), ("...", True),
     ("123", False), ("a/b", False), ("проект", False), ("a\x00b", False), ("", False),
     ("x" * 100, True), ("a b", False), ("hello+", False)],
)  # fmt: skip
def test_project_names(name, valid):
    assert (names.project_name_errors(name) == []) is valid


def test_package_names_use_coprs_messages():
    assert names.package_name_errors("python3-six+x_1.0") == []
    assert names.package_name_errors("p" * 101) == ["Too long package name"]
    assert (
        names.package_name_errors("..")
        == names.package_name_errors("a/b")
        == ["Please enter a valid package name in ^[-+_.a-zA-Z0-9]+$"]
    )


def test_dirnames():
    assert names.dirname_errors("hello", "hello") == []
    assert names.dirname_errors("hello", "hello:custom:ci-1.x") == []
    assert names.dirname_errors("hello", "hello:pr:12") == []
    for bad in ("hello:pr:x", "hello:custom:", "hello:custom:a/b", "other:custom:x", "hello:x:y"):
        assert names.dirname_errors("hello", bad)[0].startswith(
            "Please use directory format hello:custom:<SUFFIX_WITHOUT_SPACES>"
        )


@pytest.mark.parametrize(
    ("kind", "value"),
    [("owner", ".."), ("owner", "ça"), ("chroot", "Fedora-43-x86_64"), ("chroot", "../x")],
)
def test_model_validators(kind, value):
    with pytest.raises(ValidationError):
        names.NameValidator(kind)(value)


def test_confined_paths(tmp_path):
    (tmp_path / "bob" / "tools").mkdir(parents=True)
    (tmp_path / "alice" / "link").parent.mkdir()
    (tmp_path / "alice" / "link").symlink_to(tmp_path / "bob")
    assert confined(tmp_path, "alice", "hello", "fedora-43-x86_64") == (
        tmp_path / "alice" / "hello" / "fedora-43-x86_64"
    )
    for owner, parts in [("alice", ("..",)), ("alice", (".",)), ("..", ("x",)),
                         ("alice", ("../bob",)), ("alice", ("link", "tools")),
                         ("a/b", ("x",)), ("alice", ("/etc",))]:  # fmt: skip
        with pytest.raises(PathEscape):
            confined(tmp_path, owner, *parts)


def test_confined_rmtree_refuses_and_keeps_files(tmp_path):
    keep = tmp_path / "bob" / "tools" / "repodata"
    keep.mkdir(parents=True)
    assert confined_rmtree(tmp_path, "alice", "..") is False
    assert confined_rmtree(tmp_path, "alice", "link/../../bob") is False
    assert keep.is_dir()
    (tmp_path / "alice" / "mine").mkdir(parents=True)
    assert confined_rmtree(tmp_path, "alice", "mine") is True
    assert not (tmp_path / "alice" / "mine").exists()
