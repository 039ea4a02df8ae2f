"""python-copr 2.7's Client, unmodified, against the live server: the flows scripts use."""

import pytest
from copr.v3 import Client, CoprAuthException, CoprNoResultException, CoprRequestException

from apps.accounts.services import api_token_regenerate
from apps.builds.models import Build, State
from apps.packages.models import Package
from apps.projects.models import PermissionLevel, Project, ProjectPermission
from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import wait_for
from tests.factories import UserFactory, chroot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
X86 = "fedora-43-x86_64"


def client_for(live_server, user) -> Client:
    token = api_token_regenerate(user=user)
    return Client(
        {
            "copr_url": live_server.url,
            "login": token.login,
            "token": token.token,
            "username": user.username,
        }
    )


@pytest.fixture
def alice(e2e_settings, transactional_db):
    chroot()  # transactional tests flush the chroot catalog; put it back
    return UserFactory(username="alice")


@pytest.fixture
def client(live_server, alice) -> Client:
    return client_for(live_server, alice)


def test_builds_from_upload_and_url(client, worker, alice, tmp_path, served_directory):
    client.project_proxy.add("alice", "tools", chroots=[X86])
    srpm = make_srpm(tmp_path, name="hello", auto_req_prov=False)
    uploaded = client.build_proxy.create_from_file("alice", "tools", str(srpm))
    assert uploaded.state in ("pending", "importing", "running", "starting")
    directory, base_url = served_directory
    linked_srpm = make_srpm(tmp_path / "url", name="greeter", auto_req_prov=False)
    (directory / linked_srpm.name).write_bytes(linked_srpm.read_bytes())
    linked = client.build_proxy.create_from_url(
        "alice", "tools", f"{base_url}/{linked_srpm.name}", buildopts={"chroots": [X86]}
    )
    for build_id in (uploaded.id, linked.id):
        wait_for(
            lambda build_id=build_id: (
                client.build_proxy.get(build_id).state in ("succeeded", "failed")
            ),
            interval=1,
            what=f"build {build_id}",
        )
    assert Build.objects.get(pk=uploaded.id).state == State.SUCCEEDED
    assert Build.objects.get(pk=linked.id).state == State.SUCCEEDED
    built = client.build_proxy.get(linked.id)
    assert built.source_package["name"] == "greeter"
    assert built.chroots == [X86]
    packages = client.build_proxy.get_built_packages(linked.id)
    assert packages[X86]["packages"][0]["name"] == "greeter"
    listed = client.build_proxy.get_list("alice", "tools", pagination={"limit": 1})
    assert len(listed) == 1


def test_project_add_get_list_search(client, alice):
    added = client.project_proxy.add("alice", "tools", chroots=[X86], description="Tools")
    assert added.full_name == "alice/tools"
    assert added.chroot_repos[X86].endswith(f"/results/alice/tools/{X86}/")
    again = client.project_proxy.add("alice", "tools", chroots=[X86], exist_ok=True)
    assert again.id == added.id
    assert Project.objects.filter(name="tools").count() == 1

    got = client.project_proxy.get("alice", "tools")
    assert (got.description, got.enable_net, got.devel_mode) == ("Tools", False, False)
    assert [p.name for p in client.project_proxy.get_list("alice")] == ["tools"]
    assert [p.full_name for p in client.project_proxy.search("tool")] == ["alice/tools"]
    with pytest.raises(CoprNoResultException, match="Project alice/none does not exist."):
        client.project_proxy.get("alice", "none")


def test_packages_add_list_edit_build(client, alice):
    client.project_proxy.add("alice", "tools", chroots=[X86])
    client.package_proxy.add(
        "alice", "tools", "six", "pypi", {"pypi_package_name": "six", "python_versions": [3]}
    )
    package = Package.objects.get(name="six")
    assert package.source_json["python_versions"] == ["3"]
    client.package_proxy.edit("alice", "tools", "six", source_dict={"pypi_package_version": "1.0"})
    package.refresh_from_db()
    assert package.source_json["pypi_package_version"] == "1.0"
    assert package.source_json["pypi_package_name"] == "six"  # kept
    listed = client.package_proxy.get_list("alice", "tools", with_latest_build=True)
    assert [p.name for p in listed] == ["six"]
    assert listed[0].builds["latest"] is None
    build = client.package_proxy.build("alice", "tools", "six", buildopts={"background": True})
    assert Build.objects.get(pk=build.id).is_background
    latest = client.package_proxy.get("alice", "tools", "six", with_latest_build=True)
    assert latest.builds["latest"]["id"] == build.id
    with pytest.raises(CoprRequestException, match="already exists"):
        client.package_proxy.add("alice", "tools", "six", "pypi", {"pypi_package_name": "six"})


def test_permissions(client, alice, live_server):
    client.project_proxy.add("alice", "tools", chroots=[X86])
    bob = UserFactory(username="bob")
    bob_client = client_for(live_server, bob)
    assert not bob_client.project_proxy.can_build_in("bob", "alice", "tools")
    bob_client.project_proxy.request_permissions("alice", "tools", {"builder": True})
    assert client.project_proxy.get_permissions("alice", "tools")["permissions"] == {
        "bob": {"admin": "nothing", "builder": "request"}
    }
    client.project_proxy.set_permissions("alice", "tools", {"bob": {"builder": "approved"}})
    assert ProjectPermission.objects.get(user=bob).builder == PermissionLevel.APPROVED
    assert bob_client.project_proxy.can_build_in("bob", "alice", "tools")
    with pytest.raises(CoprAuthException, match="not allowed"):
        bob_client.project_proxy.get_permissions("alice", "tools")
