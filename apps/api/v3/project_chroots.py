"""/api_3/project-chroot/*: a project chroot's settings, its edit, and its mock build config."""

from django.http import JsonResponse

from apps.api.v3 import shapes
from apps.api.v3.base import CoprView, as_bool, as_text
from apps.api.v3.forms import choice
from apps.api.v3.lookups import project_chroot_or_404, project_or_404
from apps.core.errors import FieldErrors, InvalidForm
from apps.core.names import as_list
from apps.projects.build_config import bootstrap_setup, build_repos, isolation_setup
from apps.projects.models import ProjectChroot
from apps.projects.services import project_chroot_edit

CHROOT_LIST_KEYS = (
    "additional_repos", "additional_packages", "additional_modules", "with_opts", "without_opts",
)  # fmt: skip
CHROOT_BOOTSTRAPS = ("unchanged", "default", "off", "on", "image", "custom_image")
CHROOT_ISOLATIONS = ("unchanged", "default", "nspawn", "simple")
MAX_COMPS_BYTES = 5 * 1024 * 1024


class ProjectChrootView(CoprView):
    def project_chroot(self):
        project = project_or_404(self.param("ownername"), self.param("projectname"))
        return project_chroot_or_404(project, self.param("chrootname"))


class ProjectChrootGet(ProjectChrootView):
    def get(self, request, **kwargs):
        return JsonResponse(shapes.project_chroot_shape(self.project_chroot()))


class ProjectChrootBuildConfig(ProjectChrootView):
    """What `copr-cli mock-config` turns into a mock profile."""

    def get(self, request, **kwargs):
        project_chroot = self.project_chroot()
        project = project_chroot.project
        return JsonResponse(
            {
                "chroot": project_chroot.chroot.name,
                # copr:// repositories expanded into results URLs, as Copr's mock-config has them
                "repos": build_repos(project_chroot),
                "additional_repos": list(project_chroot.additional_repos),
                "additional_packages": list(project_chroot.additional_packages),
                "additional_modules": list(project_chroot.additional_modules),
                "enable_net": project.enable_net,
                "with_opts": list(project_chroot.with_opts),
                "without_opts": list(project_chroot.without_opts),
                **mock_settings(project_chroot),
            }
        )


def mock_settings(project_chroot: ProjectChroot) -> dict:
    """The chroot's isolation and bootstrap over the project's, left out when `default`
    (copr-cli's mock profile then keeps the base config's), as Copr's build-config has them."""
    settings = bootstrap_setup(project_chroot.project, project_chroot, "unchanged")
    isolation = isolation_setup(project_chroot.project, project_chroot, "unchanged")
    if isolation != "default":
        settings["isolation"] = isolation
    return settings


class ProjectChrootEdit(ProjectChrootView):
    """Multipart: the `json` part with the settings, optionally `upload_comps` (comps.xml)."""

    def post(self, request, **kwargs):
        user = self.authenticated_user()
        project_chroot = self.project_chroot()
        errors = FieldErrors()
        reset_fields = errors.check(
            "reset_fields", as_list, self.data.get("reset_fields"), "reset_fields"
        )
        comps = errors.check("upload_comps", uploaded_comps, request)
        delete_comps = errors.check(
            "delete_comps", as_bool, self.data.get("delete_comps"), name="delete_comps"
        )
        project_chroot_edit(
            user=user,
            project_chroot=project_chroot,
            reset_fields=reset_fields,
            comps=comps,
            delete_comps=bool(delete_comps),
            errors=errors,
            **chroot_settings(self.data, errors),
        )
        return JsonResponse(shapes.project_chroot_shape(project_chroot))

    put = post


def chroot_settings(data: dict, errors: FieldErrors) -> dict:
    """The sent settings; bad ones are recorded in `errors` and left out."""
    fields = {
        key: errors.check(key, as_list, data[key], key) for key in CHROOT_LIST_KEYS if key in data
    }
    if data.get("bootstrap_image"):
        fields["bootstrap_image"] = errors.check(
            "bootstrap_image", as_text, data["bootstrap_image"], "bootstrap_image"
        )
        fields["bootstrap"] = "custom_image"
    elif "bootstrap" in data:
        fields["bootstrap"] = errors.check(
            "bootstrap", choice, data["bootstrap"], "bootstrap", CHROOT_BOOTSTRAPS
        )
    if "isolation" in data:
        fields["isolation"] = errors.check(
            "isolation", choice, data["isolation"], "isolation", CHROOT_ISOLATIONS
        )
    return {key: value for key, value in fields.items() if key not in errors.errors}


def uploaded_comps(request) -> tuple[str, str] | None:
    upload = request.FILES.get("upload_comps")
    if upload is None:
        return None
    if upload.size > MAX_COMPS_BYTES:
        raise InvalidForm({"upload_comps": [f"comps.xml is larger than {MAX_COMPS_BYTES} bytes."]})
    try:
        text = upload.read().decode()
    except UnicodeDecodeError as error:
        raise InvalidForm({"upload_comps": ["comps.xml must be UTF-8 text."]}) from error
    return upload.name, text
