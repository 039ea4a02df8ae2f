"""DistGit: a package's repository on a configured dist-git and its lookaside cache."""

from django import forms

from apps.core.errors import ServiceError
from apps.packages.models import DistGitInstance, SourceType
from apps.packages.sources.base import (
    SourceForm,
    SourceMethod,
    UploadFile,
    check_committish,
    text_field,
)


class DistGitSource(SourceForm):
    source_type = SourceType.DISTGIT
    title = "DistGit"
    description = "Build a package straight from a distribution's dist-git."
    source_fields = ("package_name", "distgit", "namespace", "committish")

    package_name = forms.CharField(max_length=100)
    distgit = forms.ChoiceField(label="DistGit instance", required=False)
    namespace = forms.CharField(required=False, max_length=200)
    committish = forms.CharField(
        required=False, max_length=200, help_text="Branch, tag or commit; empty: the chroot's."
    )

    def set_source_choices(self) -> None:
        names = DistGitInstance.objects.values_list("name", flat=True)
        self.fields["distgit"].choices = [(name, name) for name in names]


class DistGitMethod(SourceMethod):
    name = SourceType.DISTGIT
    form = DistGitSource
    api_keys = ("distgit", "namespace", "committish", "package_name")
    api_defaults = {"namespace": "", "committish": ""}

    def check(self, source_json: dict) -> None:
        instance_name = text_field(source_json, "distgit")
        if instance_name and not DistGitInstance.objects.filter(name=instance_name).exists():
            known = ", ".join(DistGitInstance.objects.values_list("name", flat=True)) or "none"
            raise ServiceError(f"Unknown DistGit instance '{instance_name}' (configured: {known}).")
        if not instance_name and not DistGitInstance.objects.exists():
            raise ServiceError("No DistGit instance is configured on this server.")
        package_name = text_field(source_json, "package_name")
        clone_url = text_field(source_json, "clone_url")
        if not package_name and not clone_url:
            raise ServiceError("A DistGit source needs the package name.")
        if package_name and not all(c.isalnum() or c in "-+_." for c in package_name):
            raise ServiceError(f"Invalid package name '{package_name}'.")
        namespace = text_field(source_json, "namespace")
        if ".." in namespace.split("/"):
            raise ServiceError(f"Invalid DistGit namespace '{namespace}'.")
        check_committish(source_json)

    def api_input(self, data: dict) -> dict:
        # copr-cli's `--name` of a distgit build arrives as packagename.
        if "packagename" in data:
            return {**data, "package_name": data.get("package_name", data["packagename"])}
        return data

    def with_package_name(self, source_json: dict, name: str) -> dict:
        # A DistGit source names its repository after the package, as Copr does.
        if not source_json.get("package_name"):
            return {**source_json, "package_name": name}
        return dict(source_json)

    def job_source(
        self, build, source_json: dict, source: dict, *, upload_file: UploadFile
    ) -> dict:
        return {**source, **distgit_locations(source_json)}


def distgit_locations(source_json: dict) -> dict:
    """Clone and lookaside URLs from the operator's DistGit instance (Copr's patterns)."""
    instances = DistGitInstance.objects.all()
    if source_json.get("distgit"):
        instances = instances.filter(name=source_json["distgit"])
    instance = instances.first()
    if instance is None:
        return {}
    package_name = source_json.get("package_name", "")
    namespace = source_json.get("namespace") or instance.default_namespace
    uri = instance.clone_package_uri.format(pkgname=package_name, namespace=namespace)
    clone_url = (
        source_json.get("clone_url") or f"{instance.clone_url.rstrip('/')}/{uri.lstrip('/')}"
    )
    return {
        "clone_url": clone_url,
        "lookaside_url": instance.lookaside_url,
        "package_name": package_name,
        "namespace": namespace,
    }


METHOD = DistGitMethod()
