"""Tests for apps/repos/views.py: the .repo endpoint as the dnf copr plugin calls it."""

import base64
import json

import pytest

from tests.factories import GroupFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def public_url(settings):
    settings.PUBLIC_URL = "http://copr.example.org:8000"


@pytest.fixture
def alice_project():
    return ProjectFactory(
        name="hello",
        owner_user=UserFactory(username="alice"),
        chroot_names=["fedora-43-x86_64", "epel-9-x86_64"],
    )


@pytest.fixture
def group_project():
    return ProjectFactory(
        name="tools",
        owner_user=None,
        owner_group=GroupFactory(name="devs"),
        chroot_names=["fedora-44-x86_64"],
    )


def error_data(response) -> dict:
    return json.loads(base64.b64decode(response["Copr-Error-Data"]))


def test_plugin_request_gets_the_repo_file(client, alice_project):
    response = client.get("/coprs/alice/hello/repo/fedora-43/dnf.repo?arch=x86_64")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert response["Content-Disposition"] == "filename=alice-hello.repo"
    text = response.content.decode()
    assert text.startswith("[copr:copr.example.org:alice:hello]\n")
    assert (
        "baseurl=http://copr.example.org:8000/results/alice/hello/fedora-$releasever-$basearch/\n"
        in text
    )


def test_repo_file_without_file_name(client, alice_project):
    response = client.get("/coprs/alice/hello/repo/epel-9/")

    assert response.status_code == 200
    assert "/results/alice/hello/epel-9-$basearch/\n" in response.content.decode()


@pytest.mark.parametrize(
    "url",
    [
        "/coprs/@devs/tools/repo/fedora-44/dnf.repo?arch=x86_64",
        "/coprs/%40devs/tools/repo/fedora-44/dnf.repo",
        "/coprs/g/devs/tools/repo/fedora-44/",
        "/coprs/g/devs/tools/repo/fedora-44/group_devs-tools.repo",
    ],
)
def test_group_project_by_raw_at_name_and_by_g_prefix(client, group_project, url):
    response = client.get(url)

    assert response.status_code == 200
    assert response["Content-Disposition"] == "filename=group_devs-tools.repo"
    assert response.content.decode().startswith("[copr:copr.example.org:group_devs:tools]\n")


def test_release_not_enabled_lists_the_available_chroots(client, alice_project):
    response = client.get("/coprs/alice/hello/repo/fedora-44/dnf.repo?arch=x86_64")

    assert response.status_code == 404
    assert error_data(response) == {"available chroots": ["epel-9-x86_64", "fedora-43-x86_64"]}
    assert "Chroot fedora-44-x86_64 does not exist in alice/hello." in response.content.decode()


def test_arch_not_enabled_is_a_missing_chroot(client, alice_project):
    response = client.get("/coprs/alice/hello/repo/fedora-43/dnf.repo?arch=aarch64")

    assert response.status_code == 404
    assert "fedora-43-x86_64" in error_data(response)["available chroots"]


def test_unknown_project_is_404_without_error_data(client, alice_project):
    response = client.get("/coprs/alice/nope/repo/fedora-43/dnf.repo?arch=x86_64")

    assert response.status_code == 404
    assert "Copr-Error-Data" not in response
    assert response.content.decode() == "Project alice/nope does not exist.\n"


def test_user_path_does_not_find_a_group_project_of_the_same_name(client, group_project):
    UserFactory(username="devs")

    response = client.get("/coprs/devs/tools/repo/fedora-44/")

    assert response.status_code == 404
    assert "Copr-Error-Data" not in response


def test_post_is_not_allowed(client, alice_project):
    response = client.post("/coprs/alice/hello/repo/fedora-43/dnf.repo")

    assert response.status_code == 405


def test_hub_config_names_the_host_protocol_and_port_of_public_url(client):
    response = client.get("/dnf/copr-hub.conf")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert 'filename="copr.example.org.conf"' in response["Content-Disposition"]
    assert response.content.decode() == (
        "[copr.example.org]\nhostname = copr.example.org\nprotocol = http\nport = 8000\n"
    )


def test_hub_config_defaults_to_the_scheme_port(client, settings):
    settings.PUBLIC_URL = "https://copr.example.org"
    text = client.get("/dnf/copr-hub.conf").content.decode()
    assert "protocol = https\nport = 443\n" in text


def test_with_the_pulp_store_the_repo_file_points_at_pulps_content_app(
    client, alice_project, settings
):
    settings.REPOSITORY_STORE = "pulp"
    settings.PULP_CONTENT_URL = "https://pulp.example.org/pulp/content"

    text = client.get("/coprs/alice/hello/repo/fedora-43/").content.decode()

    assert (
        "baseurl=https://pulp.example.org/pulp/content/alice/hello/fedora-$releasever-$basearch/\n"
        in text
    )
    # The key stays in the results tree, which the service serves with the Pulp store too.
    assert "gpgkey=http://copr.example.org:8000/results/alice/hello/pubkey.gpg\n" in text
