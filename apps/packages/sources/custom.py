"""Custom script: the user's script writes the spec and sources in a chroot-like sandbox."""

from django import forms

from apps.core.errors import ServiceError
from apps.packages.models import SourceType
from apps.packages.sources.base import (
    SourceForm,
    SourceMethod,
    UploadFile,
    relative_path,
    text_field,
)
from apps.projects.models import Chroot

MAX_CUSTOM_SCRIPT_BYTES = 4096  # Copr's limit on the custom method's script
# The custom webhook's request body, kept in the build's upload directory for the script.
HOOK_PAYLOAD_NAME = "hook_payload"


class CustomSource(SourceForm):
    source_type = SourceType.CUSTOM
    title = "Custom script"
    description = (
        "A script run in a chroot that writes the spec and sources into its working directory."
    )
    source_fields = ("script", "chroot", "builddeps", "resultdir", "repos")

    script = forms.CharField(widget=forms.Textarea(attrs={"rows": 8, "class": "mono"}), strip=False)
    chroot = forms.ChoiceField(initial="fedora-latest-x86_64")
    builddeps = forms.CharField(
        required=False, max_length=500, help_text="Packages the script needs, space separated."
    )
    resultdir = forms.CharField(required=False, max_length=200, label="Result directory")
    repos = forms.CharField(
        required=False, max_length=1000, help_text="Extra repositories, space separated."
    )

    def set_source_choices(self) -> None:
        names = Chroot.objects.filter(is_active=True).values_list("name", flat=True)
        arches = sorted(set(Chroot.objects.values_list("arch", flat=True)))
        self.fields["chroot"].choices = [
            (f"fedora-latest-{a}", f"fedora-latest-{a}") for a in arches
        ]
        self.fields["chroot"].choices += [(name, name) for name in names]

    def source_json(self) -> dict:
        data = super().source_json()
        # Browsers send CRLF; the script runs under a Unix shell, which ends at a newline.
        data["script"] = data["script"].replace("\r\n", "\n").rstrip("\n") + "\n"
        return data


class CustomMethod(SourceMethod):
    name = SourceType.CUSTOM
    form = CustomSource
    api_keys = ("script", "chroot", "builddeps", "resultdir", "repos")
    api_defaults = {"chroot": "fedora-latest-x86_64", "builddeps": "", "resultdir": "", "repos": ""}
    api_renames = {
        "script_builddeps": "builddeps",
        "script_resultdir": "resultdir",
        "script_chroot": "chroot",
        "script_repos": "repos",
    }

    def check(self, source_json: dict) -> None:
        script = text_field(source_json, "script", required=True)
        if len(script.encode()) > MAX_CUSTOM_SCRIPT_BYTES:
            raise ServiceError(f"The custom script is longer than {MAX_CUSTOM_SCRIPT_BYTES} bytes.")
        chroot = text_field(source_json, "chroot", required=True)
        check_custom_chroot(chroot)
        builddeps = source_json.get("builddeps") or ""
        if not isinstance(builddeps, str | list):
            raise ServiceError("builddeps must be a space-separated list of package names.")
        relative_path(source_json, "resultdir")
        repos = source_json.get("repos") or []
        if not isinstance(repos, str | list):
            raise ServiceError("repos must be a list of repository URLs.")

    def api_normalized(self, source: dict) -> dict:
        for key in ("builddeps", "repos"):
            if key in source and isinstance(source[key], list):
                source[key] = " ".join(str(item) for item in source[key])
        script = source.get("script")
        if isinstance(script, str) and script and not script.endswith("\n"):
            source["script"] = script + "\n"
        return source

    def job_source(
        self, build, source_json: dict, source: dict, *, upload_file: UploadFile
    ) -> dict:
        source["chroot"] = resolved_custom_chroot(source_json.get("chroot", ""))
        payload = upload_file(HOOK_PAYLOAD_NAME) if source_json.get("hook_data") else None
        if payload is not None:
            source["hook_payload_path"] = str(payload)
        return source


def check_custom_chroot(name: str) -> None:
    if name.startswith("fedora-latest-"):
        return  # resolved to the newest Fedora chroot when the build runs
    if not Chroot.objects.filter(name=name).exists():
        raise ServiceError(f"Chroot {name} does not exist.")


def resolved_custom_chroot(name: str) -> str:
    """`fedora-latest-<arch>` is the newest active Fedora release chroot of that arch."""
    if not name.startswith("fedora-latest-"):
        return name
    arch = name.removeprefix("fedora-latest-")
    releases = Chroot.objects.filter(
        name__startswith="fedora-", name__endswith=f"-{arch}", is_active=True
    ).values_list("name", flat=True)
    numbered = [n for n in releases if n.split("-")[1].isdigit()]
    return max(numbered, key=lambda n: int(n.split("-")[1]), default=name)


METHOD = CustomMethod()
