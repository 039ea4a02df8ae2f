"""Claims of the test provider: username, e-mail, nickname and the user's groups."""

from oauth2_provider.oauth2_validators import OAuth2Validator


class ClaimsValidator(OAuth2Validator):
    # Like Fedora's and other providers, groups come with their own scope.
    oidc_claim_scope = {**OAuth2Validator.oidc_claim_scope, "groups": "groups"}

    def get_additional_claims(self, request):
        user = request.user
        return {
            "preferred_username": user.username,
            "nickname": user.first_name,
            "email": user.email,
            "groups": sorted(user.groups.values_list("name", flat=True)),
        }
