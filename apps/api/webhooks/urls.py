"""Webhook URLs (Copr's): /webhooks/<forge>/<copr_id>/<secret>/[<package>/], trailing / optional."""

from django.urls import re_path

from apps.api.webhooks import views

app_name = "webhooks"
FORGE = r"^(?P<copr_id>\d+)/(?P<uuid>[^/]+)(?:/(?P<pkg_name>[-+_.a-zA-Z0-9]+))?/?$"

urlpatterns = [
    re_path(r"^github/" + FORGE.removeprefix("^"), views.github, name="github"),
    re_path(r"^gitlab/" + FORGE.removeprefix("^"), views.gitlab, name="gitlab"),
    re_path(r"^bitbucket/" + FORGE.removeprefix("^"), views.bitbucket, name="bitbucket"),
    re_path(r"^pagure/" + FORGE.removeprefix("^"), views.pagure, name="pagure"),
    re_path(
        r"^custom/(?P<copr_id>\d+)/(?P<uuid>[^/]+)/(?P<package_name>[-+_.a-zA-Z0-9]+)/?$",
        views.custom,
        name="custom",
    ),
]
