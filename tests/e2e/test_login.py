"""Browser login through a real OpenID Connect provider: groups become @groups; logout."""

import pytest

from apps.accounts.models import OidcIdentity, User
from tests.e2e.oidc import PACKAGER, log_out, oidc_login, save_screenshot

# The fixtures (oidc_provider, browser_page, ...) come from the module, loaded as a plugin.
pytest_plugins = ["tests.e2e.oidc"]
pytestmark = pytest.mark.e2e


def group_names(username: str) -> list[str]:
    return sorted(User.objects.get(username=username).owner_groups.values_list("name", flat=True))


def test_oidc_login_makes_a_packagers_member_and_logs_out(oidc_provider, browser_page, live_server):
    oidc_login(browser_page, live_server, PACKAGER.username, PACKAGER.password, screenshots="oidc")
    save_screenshot(browser_page, "oidc-logged-in")

    user = User.objects.get(username=PACKAGER.username)
    assert not user.has_usable_password()
    assert OidcIdentity.objects.get(user=user).issuer == oidc_provider.issuer
    assert group_names(PACKAGER.username) == ["packagers"]

    log_out(browser_page)
    browser_page.goto(f"{live_server.url}/api/")
    assert "/login/" in browser_page.url


def test_group_changes_at_the_provider_apply_at_the_next_login(
    oidc_provider, browser_page, live_server
):
    oidc_provider.add_user("bob", "bob-at-the-idp-1", groups=["packagers", "infra"])
    oidc_login(browser_page, live_server, "bob", "bob-at-the-idp-1")
    assert group_names("bob") == ["infra", "packagers"]
    log_out(browser_page)

    oidc_provider.add_user("bob", "bob-at-the-idp-1", groups=["infra", "qa"])
    # The provider still has bob's session, so it sends the browser straight back.
    oidc_login(browser_page, live_server, "bob", "bob-at-the-idp-1")
    assert group_names("bob") == ["infra", "qa"]
