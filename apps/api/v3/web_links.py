"""The web URL copr-cli prints for a build, `/coprs/build/<id>/`, leads to that build."""

from django.shortcuts import redirect
from django.urls import NoReverseMatch, path, reverse


def build_link(request, build_id: int):
    """The web build page once it exists (URL name `build-detail`), else the API's build."""
    try:
        target = reverse("build-detail", kwargs={"build_id": build_id})
    except NoReverseMatch:
        try:
            target = reverse("build-detail", args=[build_id])
        except NoReverseMatch:
            target = ""
    if not target or target.rstrip("/") == request.path.rstrip("/"):
        # No web build page yet, or it shares this URL: never redirect to ourselves.
        target = f"/api/v1/builds/{build_id}"
    return redirect(target)


urlpatterns = [
    path("coprs/build/<int:build_id>/", build_link, name="copr-build-link"),
    path("coprs/build/<int:build_id>", build_link),
]
