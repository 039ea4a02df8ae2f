"""Shapes of /api/v1: input serializers check requests, output serializers render rows."""

from collections.abc import Mapping

from django.conf import settings
from django.urls import reverse
from rest_framework import serializers

from apps.api.v1.fields import (
    NameListField,
    ReadOnlyJSONField,
    StringListField,
    TextOrNullField,
    UnixTimeField,
)
from apps.builds.models import Build, BuildTask
from apps.builds.services import BuildOptions
from apps.core.paths import repository_url, results_url
from apps.projects.models import Project, ProjectChroot
from apps.projects.services import EDITABLE_FIELDS, STAFF_ONLY_FIELDS

PROJECT_SETTINGS = sorted(EDITABLE_FIELDS | STAFF_ONLY_FIELDS)
# Sent by HTML forms with session auth; not part of any resource.
IGNORED_FORM_FIELDS = frozenset({"csrfmiddlewaretoken"})
ONLY_CANCEL = "Only state may be changed, and only to canceled."


class Links:
    """Absolute URLs of v1 resources, from one `reverse` per request.

    A reverse and an absolute URI per link and row were a third of a list's time. Owner,
    project names and ids are made of URL-safe characters (checked where they enter), so
    joining them gives what `reverse` would (tests/api/v1 compares the two).
    """

    def __init__(self, request) -> None:
        root = reverse("v1-projects").removesuffix("projects")
        self.root = request.build_absolute_uri(root) if request else f"{settings.PUBLIC_URL}{root}"

    def project(self, owner: str, name: str, suffix: str = "") -> str:
        return f"{self.root}projects/{owner}/{name}{suffix}"

    def build(self, build_id: int, suffix: str = "") -> str:
        return f"{self.root}builds/{build_id}{suffix}"


def links(serializer: serializers.Serializer) -> Links:
    """The request's `Links`, made once and kept in the context the list's rows share."""
    context = serializer.context
    if "links" not in context:
        context["links"] = Links(context.get("request"))
    return context["links"]


class StrictInput:
    """Reject keys the serializer does not know, so a typo is a 400 and not silently lost."""

    unknown_field_message = "Unknown or read-only field."

    def to_internal_value(self, data):
        if isinstance(data, Mapping):
            unknown = set(data) - set(self.fields) - IGNORED_FORM_FIELDS
            if unknown:
                raise serializers.ValidationError(
                    {name: [self.unknown_field_message] for name in sorted(unknown)}
                )
        return super().to_internal_value(data)


# --- projects -----------------------------------------------------------------------------


class ProjectSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="ownername", read_only=True)
    full_name = serializers.CharField(read_only=True)
    created_on = UnixTimeField()
    chroots = serializers.SerializerMethodField()
    chroot_repos = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "owner",
            "name",
            "full_name",
            "created_on",
            *PROJECT_SETTINGS,
            "chroots",
            "chroot_repos",
            "links",
        ]
        read_only_fields = fields

    def get_chroots(self, project: Project) -> list[str]:
        """Names of the enabled chroots (set by `queries.with_chroot_names`)."""
        return project.chroot_names

    def get_chroot_repos(self, project: Project) -> dict[str, str]:
        """Base URL of the published repository of each enabled chroot."""
        return {
            name: repository_url(f"{project.ownername}/{project.name}/{name}/")
            for name in project.chroot_names
        }

    def get_links(self, project: Project) -> dict[str, str]:
        urls, names = links(self), (project.ownername, project.name)
        return {
            "self": urls.project(*names),
            "builds": urls.project(*names, "/builds"),
            "chroots": urls.project(*names, "/chroots"),
        }


class ProjectChrootSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="chroot.name", read_only=True)
    arch = serializers.CharField(source="chroot.arch", read_only=True)
    os_release = serializers.CharField(source="chroot.os_release", read_only=True)
    os_version = serializers.CharField(source="chroot.os_version", read_only=True)
    is_active = serializers.BooleanField(source="chroot.is_active", read_only=True)

    class Meta:
        model = ProjectChroot
        fields = [
            "name",
            "arch",
            "os_release",
            "os_version",
            "is_active",
            "additional_repos",
            "additional_packages",
            "with_opts",
            "without_opts",
        ]
        read_only_fields = fields


class ProjectEditInput(StrictInput, serializers.ModelSerializer):
    """Settings to change; `chroots`, when given, replaces the enabled set."""

    additional_repos = StringListField(required=False)
    runtime_dependencies = StringListField(required=False)
    packit_forge_projects_allowed = StringListField(required=False)
    chroots = NameListField(source="chroot_names", required=False)

    class Meta:
        model = Project
        fields = [*PROJECT_SETTINGS, "chroots"]


class ProjectCreateInput(ProjectEditInput):
    """A new project; `owner` defaults to the user, `@group` for a group's project."""

    owner = serializers.CharField(source="ownername", required=False, max_length=150)
    chroots = NameListField(source="chroot_names")

    class Meta(ProjectEditInput.Meta):
        fields = ["owner", "name", *PROJECT_SETTINGS, "chroots"]


# --- builds -------------------------------------------------------------------------------


class PackageSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    version = serializers.CharField(read_only=True)


class BuildSerializer(serializers.ModelSerializer):
    submitted_on = UnixTimeField()
    started_on = UnixTimeField()
    ended_on = UnixTimeField()
    source_metadata = ReadOnlyJSONField(source="source_json")
    package_name = TextOrNullField()
    package_version = TextOrNullField()
    built_packages = PackageSerializer(many=True, read_only=True)
    submitter = serializers.SlugRelatedField(slug_field="username", read_only=True)
    links = serializers.SerializerMethodField()

    class Meta:
        model = Build
        fields = [
            "id",
            "state",
            "submitted_on",
            "started_on",
            "ended_on",
            "source_type",
            "source_metadata",
            "package_name",
            "package_version",
            "enable_net",
            "repos",
            "built_packages",
            "submitter",
            "links",
        ]
        read_only_fields = fields

    def get_links(self, build: Build) -> dict[str, str]:
        urls, project = links(self), build.project
        return {
            "self": urls.build(build.pk),
            "project": urls.project(project.ownername, project.name),
            "tasks": urls.build(build.pk, "/tasks"),
        }


class BuildCreateInput(StrictInput, serializers.Serializer):
    """An SRPM by URL (JSON or form) or as the multipart file `srpm`, with Copr's options."""

    source_url = serializers.CharField(required=False, max_length=2000)
    srpm = serializers.FileField(required=False)
    chroots = NameListField(required=False, help_text="Names or fnmatch patterns.")
    exclude_chroots = NameListField(required=False)
    enable_net = serializers.BooleanField(required=False, allow_null=True, default=None)
    timeout = serializers.IntegerField(required=False, allow_null=True, default=None)
    background = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict) -> dict:
        if ("source_url" in attrs) == ("srpm" in attrs):
            raise serializers.ValidationError(
                "Give exactly one source: source_url (a link to a .src.rpm) "
                "or srpm (the file, in a multipart upload)."
            )
        return attrs

    def build_submit_arguments(self) -> dict:
        """The source and options keyword arguments of `build_submit`."""
        data = self.validated_data
        options = BuildOptions(
            chroots=data.get("chroots") or None,
            exclude_chroots=data.get("exclude_chroots", []),
            enable_net=data["enable_net"],
            timeout=data["timeout"],
            background=data["background"],
        )
        if "srpm" in data:
            source = {"source_type": "upload", "source_json": {}, "upload": data["srpm"]}
        else:
            source = {"source_type": "link", "source_json": {"url": data["source_url"]}}
        return {**source, "options": options}


class BuildResubmitInput(StrictInput, serializers.Serializer):
    """A resubmit of a build's source, optionally with SSH access for debugging (one chroot,
    the user's public keys, the hours the machine stays after the build)."""

    chroots = NameListField(required=False, help_text="Names or fnmatch patterns.")
    enable_net = serializers.BooleanField(required=False, allow_null=True, default=None)
    timeout = serializers.IntegerField(required=False, allow_null=True, default=None)
    background = serializers.BooleanField(required=False, default=False)
    ssh_public_keys = serializers.CharField(
        required=False, default="", max_length=200_000, help_text="One per line."
    )
    ssh_hours = serializers.IntegerField(required=False, allow_null=True, default=None)

    def options(self) -> BuildOptions:
        data = self.validated_data
        return BuildOptions(
            chroots=data.get("chroots") or None,
            enable_net=data["enable_net"],
            timeout=data["timeout"],
            background=data["background"],
            ssh_public_keys=data["ssh_public_keys"],
            ssh_hours=data["ssh_hours"],
        )


class SshAccessSerializer(serializers.Serializer):
    """A build's SSH access as its submitter sees it: the machine's ssh command once kept."""

    hours = serializers.IntegerField()
    state = serializers.CharField(help_text="waiting (for the build), kept, or gone")
    command = serializers.CharField(allow_null=True)
    kept_until = UnixTimeField(allow_null=True)


class BuildStateInput(StrictInput, serializers.Serializer):
    """The one change a build accepts: `{"state": "canceled"}`."""

    unknown_field_message = ONLY_CANCEL
    state = serializers.ChoiceField(
        choices=["canceled"],
        error_messages={"invalid_choice": ONLY_CANCEL, "required": ONLY_CANCEL},
    )


# --- tasks --------------------------------------------------------------------------------


class TaskPackageSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    epoch = serializers.IntegerField(read_only=True, allow_null=True, required=False)
    version = serializers.CharField(read_only=True)
    release = serializers.CharField(read_only=True, required=False)
    arch = serializers.CharField(read_only=True, required=False)


class TaskSerializer(serializers.ModelSerializer):
    build_id = serializers.IntegerField(read_only=True)
    chroot = serializers.SlugRelatedField(slug_field="name", read_only=True, allow_null=True)
    kind = serializers.SerializerMethodField()
    submitted_on = UnixTimeField(source="queued_on")
    started_on = UnixTimeField()
    ended_on = UnixTimeField()
    result_url = serializers.SerializerMethodField()
    live_log_url = serializers.SerializerMethodField()
    backend_log_url = serializers.SerializerMethodField()
    built_packages = TaskPackageSerializer(many=True, read_only=True)

    class Meta:
        model = BuildTask
        fields = [
            "id",
            "build_id",
            "chroot",
            "kind",
            "state",
            "state_reason",
            "submitted_on",
            "started_on",
            "ended_on",
            "result_url",
            "live_log_url",
            "backend_log_url",
            "built_packages",
        ]
        read_only_fields = fields

    def get_kind(self, task: BuildTask) -> str:
        return "source" if task.is_source else "rpm"

    def get_result_url(self, task: BuildTask) -> str | None:
        """Where the task's logs and packages are published; null before it has a place."""
        if not task.result_dir:
            return None
        build = task.build
        return results_url(f"{build.project.ownername}/{build.project_dirname}/{task.result_dir}/")

    def get_live_log_url(self, task: BuildTask) -> str | None:
        base = self.get_result_url(task)
        return f"{base}builder-live.log" if base else None

    def get_backend_log_url(self, task: BuildTask) -> str | None:
        base = self.get_result_url(task)
        return f"{base}backend.log" if base else None
