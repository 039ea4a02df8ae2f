"""OIDC login against the real test provider, driven with Django's test client."""

import pytest

from apps.accounts.models import OidcIdentity, User
from apps.accounts.services import user_disable
from tests.e2e.oidc import PACKAGER, oidc_login_with_client
from tests.factories import UserFactory

pytest_plugins = ["tests.e2e.oidc"]
pytestmark = pytest.mark.django_db


def group_names(username: str) -> list[str]:
    return sorted(User.objects.get(username=username).owner_groups.values_list("name", flat=True))


def logged_in_username(client) -> str | None:
    user = client.get("/login/").wsgi_request.user
    return user.username if user.is_authenticated else None


def messages_after(response, client) -> str:
    return client.get(response["Location"]).content.decode()


def test_first_login_creates_the_user_with_the_groups_claim_as_groups(
    client, oidc_provider_for_client
):
    response = oidc_login_with_client(
        client, oidc_provider_for_client, PACKAGER.username, PACKAGER.password
    )
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert logged_in_username(client) == "alice"
    user = User.objects.get(username="alice")
    assert not user.has_usable_password()
    assert user.email == "alice@idp.example"
    assert group_names("alice") == ["packagers"]
    identity = OidcIdentity.objects.get(user=user)
    assert identity.issuer == oidc_provider_for_client.issuer
    assert identity.last_login is not None


def test_groups_follow_the_claim_at_every_login(client, oidc_provider_for_client):
    provider = oidc_provider_for_client
    provider.add_user("carol", "carol-pw-1", groups=["packagers", "infra"])
    oidc_login_with_client(client, provider, "carol", "carol-pw-1")
    assert group_names("carol") == ["infra", "packagers"]

    client.post("/logout/")
    provider.add_user("carol", "carol-pw-1", groups=["infra", "docs"])
    oidc_login_with_client(client, provider, "carol", "carol-pw-1")
    assert group_names("carol") == ["docs", "infra"]

    provider.add_user("carol", "carol-pw-1", groups=[])
    oidc_login_with_client(client, provider, "carol", "carol-pw-1")
    assert group_names("carol") == []


def test_unusable_group_names_are_skipped(client, oidc_provider_for_client):
    oidc_provider_for_client.add_user("dave", "dave-pw-1", groups=["/org/team", "packagers"])
    oidc_login_with_client(client, oidc_provider_for_client, "dave", "dave-pw-1")
    assert group_names("dave") == ["packagers"]


def test_the_username_claim_is_configurable(client, oidc_provider_for_client, settings):
    settings.OIDC_USERNAME_CLAIM = "nickname"
    oidc_provider_for_client.add_user("erin@corp", "erin-pw-1", nickname="erin.w")
    oidc_login_with_client(client, oidc_provider_for_client, "erin@corp", "erin-pw-1")
    assert logged_in_username(client) == "erin.w"


def test_a_username_the_site_cannot_use_is_refused(client, oidc_provider_for_client):
    oidc_provider_for_client.add_user("frank@corp", "frank-pw-1")
    response = oidc_login_with_client(client, oidc_provider_for_client, "frank@corp", "frank-pw-1")
    assert response["Location"] == "/login/"
    assert "cannot be used here" in messages_after(response, client)
    assert logged_in_username(client) is None
    assert not User.objects.filter(username="frank@corp").exists()


def test_a_clash_with_a_local_account_is_refused_not_merged(client, oidc_provider_for_client):
    local = UserFactory(username="Grace")
    oidc_provider_for_client.add_user("grace", "grace-pw-1", groups=["packagers"])
    response = oidc_login_with_client(client, oidc_provider_for_client, "grace", "grace-pw-1")
    assert "already belongs to another account" in messages_after(response, client)
    assert logged_in_username(client) is None
    assert not local.owner_groups.exists()
    assert not OidcIdentity.objects.exists()


def test_an_operator_linked_identity_logs_into_the_existing_account(
    client, oidc_provider_for_client
):
    local = UserFactory(username="heidi")
    subject = oidc_provider_for_client.add_user("heidi", "heidi-pw-1")
    OidcIdentity.objects.create(user=local, issuer=oidc_provider_for_client.issuer, subject=subject)
    oidc_login_with_client(client, oidc_provider_for_client, "heidi", "heidi-pw-1")
    assert logged_in_username(client) == "heidi"
    assert User.objects.filter(username__iexact="heidi").count() == 1


def test_a_disabled_user_cannot_log_in_and_loses_the_session(client, oidc_provider_for_client):
    oidc_login_with_client(client, oidc_provider_for_client, PACKAGER.username, PACKAGER.password)
    user = User.objects.get(username="alice")
    user_disable(user=user)
    assert logged_in_username(client) is None

    response = oidc_login_with_client(
        client, oidc_provider_for_client, PACKAGER.username, PACKAGER.password
    )
    assert "This account is disabled." in messages_after(response, client)
    assert logged_in_username(client) is None


def test_logout_ends_an_oidc_session(client, oidc_provider_for_client):
    oidc_login_with_client(client, oidc_provider_for_client, PACKAGER.username, PACKAGER.password)
    assert client.get("/logout/").status_code == 405  # POST only, with the CSRF token
    client.post("/logout/")
    assert logged_in_username(client) is None


def test_oidc_urls_are_absent_until_configured(client):
    assert client.get("/oidc_login/").status_code == 404
    assert client.get("/oidc_auth/?code=x&state=y").status_code == 404
    assert "Log in with" not in client.get("/login/").content.decode()
