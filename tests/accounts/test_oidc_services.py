"""apps.accounts.services.oidc_user_login: identity matching, renames, groups, refusals."""

import pytest

from apps.accounts.models import OidcIdentity
from apps.accounts.services import LoginRefused, oidc_user_login, user_disable
from tests.factories import GroupFactory, UserFactory

pytestmark = pytest.mark.django_db
ISSUER = "https://sso.example"


def login(subject="sub-1", username="nina", email="nina@example.org", groups=()):
    return oidc_user_login(
        issuer=ISSUER, subject=subject, username=username, email=email, group_names=list(groups)
    )


def group_names(user) -> list[str]:
    return sorted(user.owner_groups.values_list("name", flat=True))


def test_groups_are_added_and_removed_to_match_each_login():
    GroupFactory(name="old", external_name="old")
    user = login(groups=["packagers", "old"])
    assert group_names(user) == ["old", "packagers"]
    user = login(groups=["packagers", "infra"])
    assert group_names(user) == ["infra", "packagers"]


def test_a_renamed_provider_account_keeps_its_site_username_and_projects():
    first = login(username="nina")
    again = login(username="nina-renamed", email="new@example.org")
    assert again.pk == first.pk
    assert again.username == "nina"
    assert again.email == "new@example.org"


def test_the_same_subject_at_another_issuer_is_another_identity():
    login(username="nina")
    with pytest.raises(LoginRefused, match="already belongs"):
        oidc_user_login(
            issuer="https://other.example",
            subject="sub-1",
            username="nina",
            email="",
            group_names=[],
        )
    assert OidcIdentity.objects.count() == 1


def test_a_name_taken_by_a_local_account_is_refused_in_any_case():
    UserFactory(username="Nina")
    with pytest.raises(LoginRefused):
        login(username="nina", groups=["packagers"])
    assert not OidcIdentity.objects.exists()


def test_a_disabled_account_is_refused_and_its_groups_stay():
    user = login(groups=["packagers"])
    user_disable(user=user)
    with pytest.raises(LoginRefused, match="disabled"):
        login(groups=[])
    assert group_names(user) == ["packagers"]
