"""django-allauth glue: GitHub/GitLab sign-ups only, usernames that fit Copr's namespaces."""

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.utils import user_username
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.http import Http404

from apps.accounts.models import NAME_VALIDATOR

# Usernames become project owner names in URLs and .repo files; Copr allows 100 characters.
USERNAME_VALIDATORS = [NAME_VALIDATOR, MaxLengthValidator(100)]


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        # Local accounts are made by operators (manage.py create_user, the console).
        return False


class LoginNotConfigured(SocialApp.DoesNotExist, Http404):
    """No client id for the provider: its login URL is a 404 (allauth's own callers still
    catch it as DoesNotExist), not a 500."""


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def get_app(self, request, provider, client_id=None):
        try:
            return super().get_app(request, provider, client_id)
        except SocialApp.DoesNotExist as error:
            raise LoginNotConfigured(f"{provider} login is not set up on this site.") from error

    def is_open_for_signup(self, request, sociallogin):
        return True

    def is_auto_signup_allowed(self, request, sociallogin):
        """Ask for a username instead of silently renaming one that is taken or unusable."""
        if not super().is_auto_signup_allowed(request, sociallogin):
            return False
        try:
            get_account_adapter(request).clean_username(user_username(sociallogin.user) or "")
        except ValidationError:
            return False
        return True
