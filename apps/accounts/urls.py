"""Account URLs."""

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.urls import path

from apps.accounts import views

urlpatterns = [
    path("api/", views.api_token, name="api-token"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
]
if settings.LOCAL_PASSWORD_LOGIN:
    urlpatterns.append(path("login/", auth_views.LoginView.as_view(), name="login"))
