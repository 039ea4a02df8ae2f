"""Login pages and the API token page."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from apps.accounts.config_snippet import copr_cli_config
from apps.accounts.login_methods import external_login_methods
from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_regenerate


class LoginView(auth_views.LoginView):
    """Every configured login method; the password form only while LOCAL_PASSWORD_LOGIN is on."""

    redirect_authenticated_user = True

    def post(self, request, *args, **kwargs):
        if not settings.LOCAL_PASSWORD_LOGIN:
            # The backend refuses too; this keeps the answer explicit instead of "wrong password".
            context = self.get_context_data(refused="Password login is turned off on this site.")
            return self.render_to_response(context, status=403)
        return super().post(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["password_login"] = settings.LOCAL_PASSWORD_LOGIN
        context["external_methods"] = external_login_methods(
            self.request, next_url=self.get_redirect_url()
        )
        return context


@login_required
@require_http_methods(["GET", "POST"])
def api_token(request):
    """Show the user's API login; POST issues a new token and shows the config section once."""
    config = None
    if request.method == "POST":
        issued = api_token_regenerate(user=request.user)
        config = copr_cli_config(username=request.user.username, issued=issued)
    current = ApiToken.objects.filter(user=request.user).first()
    return render(request, "accounts/api_token.html", {"current": current, "config": config})
