"""Account URLs: login (password, OIDC, GitHub/GitLab through allauth), logout, API token."""

from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from apps.accounts import oidc, views

urlpatterns = [
    path("api/", views.api_token, name="api-token"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Copr's paths; the callback is the redirect URI registered at the provider.
    path("oidc_login/", oidc.oidc_login, name="oidc_authentication_init"),
    path("oidc_auth/", oidc.oidc_callback, name="oidc_authentication_callback"),
    # One login page for every method; allauth's own one leads there.
    path("accounts/login/", RedirectView.as_view(pattern_name="login", query_string=True)),
    path("accounts/", include("allauth.urls")),
]
