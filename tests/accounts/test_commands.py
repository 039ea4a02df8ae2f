"""manage.py create_user and ensure_admin."""

import configparser
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from apps.accounts.models import User
from apps.accounts.selectors import user_for_api_credentials

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_create_user_prints_working_copr_cli_config():
    output = run("create_user", "alice", "--group", "packagers", "--group", "infra")
    config = configparser.ConfigParser()
    config.read_string(output)
    section = config["copr-cli"]
    assert section["username"] == "alice"
    assert section["copr_url"] == "http://127.0.0.1:8000"
    assert section["encrypted"] == "False"
    user = user_for_api_credentials(section["login"], section["token"])
    assert user.username == "alice"
    assert sorted(user.owner_groups.values_list("name", flat=True)) == ["infra", "packagers"]


def test_create_user_updates_existing_user_and_rotates_token():
    first = run("create_user", "bob")
    second = run("create_user", "bob", "--staff")
    assert User.objects.filter(username="bob").count() == 1
    assert User.objects.get(username="bob").is_staff
    old = configparser.ConfigParser()
    old.read_string(first)
    assert user_for_api_credentials(old["copr-cli"]["login"], old["copr-cli"]["token"]) is None
    assert "token = " in second


def test_create_user_rejects_bad_names():
    with pytest.raises(CommandError, match="Invalid username"):
        run("create_user", "bad name/with slash")
    assert not User.objects.exists()


def test_ensure_admin_creates_one_admin_once():
    output = run("ensure_admin")
    password = output.split("password: ")[1].split()[0]
    admin = User.objects.get(username="admin")
    assert admin.is_staff and admin.check_password(password)
    assert run("ensure_admin") == ""
    assert User.objects.filter(is_staff=True).count() == 1
