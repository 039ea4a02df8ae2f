"""The home page."""

from django.shortcuts import render

from apps.projects.models import Project


def home(request):
    projects = Project.objects.listed().with_owner().order_by("-id")[:20]
    return render(request, "core/home.html", {"projects": projects})
