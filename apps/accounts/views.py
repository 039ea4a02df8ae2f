"""Login pages and the API token page."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from apps.accounts.config_snippet import copr_cli_config
from apps.accounts.models import ApiToken
from apps.accounts.services import api_token_regenerate


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
