"""New-build forms: the build options mixed with one source method's fields.

A `SourceForm` subclass in a source method's module (`apps.packages.sources`) holds one
type's fields and turns them into Copr's `source_json`; it is the only definition of that
type's fields. New builds mix in `BuildForm` (chroots, network, timeout, background) and go
to `build_submit`; packages mix in their settings (`apps.packages.forms`).
`apps.packages.sources.check_source` checks the result.
"""

from django import forms
from django.conf import settings

from apps.builds.services import BuildOptions
from apps.fleet.selectors import served_arches
from apps.packages.sources import METHODS
from apps.packages.sources.base import SourceForm
from apps.projects.models import Project


class BuildForm(SourceForm):
    """The options of every build, mixed with one source type (`ScmBuildForm`, …)."""

    chroots = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Builds in every ticked chroot; none ticked: all that a builder serves.",
    )
    enable_net = forms.BooleanField(required=False, label="Network access during the build")
    timeout = forms.IntegerField(
        required=False, min_value=1, help_text="Seconds; empty for the default."
    )
    background = forms.BooleanField(
        required=False, label="Background build (runs after normal builds)"
    )

    def __init__(self, *args, project: Project, **kwargs):
        names = [pc.chroot.name for pc in project.project_chroots.all() if pc.chroot.is_active]
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("enable_net", project.enable_net)
        # Ticked by default: the chroots a builder can take (the others are refused).
        served = served_arches()
        kwargs["initial"].setdefault(
            "chroots",
            [
                pc.chroot.name
                for pc in project.project_chroots.all()
                if pc.chroot.arch in served and pc.chroot.is_active
            ],
        )
        super().__init__(*args, **kwargs)
        self.project = project
        self.fields["chroots"].choices = [(name, name) for name in names]

    def options(self) -> BuildOptions:
        return build_options(self.cleaned_data)

    def submit_arguments(self) -> dict:
        """Keyword arguments of `build_submit` besides user and project."""
        return {
            "source_type": self.source_type,
            "source_json": self.source_json(),
            "upload": self.upload(),
            "options": self.options(),
        }

    def visible_option_fields(self):
        return [self[name] for name in ("chroots", "enable_net", "timeout", "background")]


class ResubmitForm(forms.Form):
    """Copr's resubmit: the earlier build's chroots and options, each of them changeable."""

    chroots = forms.MultipleChoiceField(
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="Builds in every ticked chroot; none ticked: all that a builder serves.",
    )
    enable_net = forms.BooleanField(required=False, label="Network access during the build")
    timeout = forms.IntegerField(required=False, min_value=1, help_text="Seconds.")
    background = forms.BooleanField(
        required=False, label="Background build (runs after normal builds)"
    )
    after_build_id = forms.IntegerField(
        required=False, min_value=1, help_text="Run after the batch of this build has finished."
    )
    with_build_id = forms.IntegerField(
        required=False, min_value=1, help_text="Run in the same batch as this build."
    )

    def __init__(self, *args, build, **kwargs):
        kwargs["initial"] = {
            "chroots": build.requested_chroots,
            "enable_net": build.enable_net,
            "timeout": build.timeout,
            "background": build.is_background,
        }
        super().__init__(*args, **kwargs)
        project_chroots = build.project.project_chroots.select_related("chroot")
        self.fields["chroots"].choices = [
            (pc.chroot.name, pc.chroot.name) for pc in project_chroots if pc.chroot.is_active
        ]

    def options(self) -> BuildOptions:
        data = self.cleaned_data
        return build_options(
            data, after_build_id=data["after_build_id"], with_build_id=data["with_build_id"]
        )


class SshResubmitForm(ResubmitForm):
    """Copr's "resubmit with SSH": one chroot, the user's public keys, how long to keep the
    machine after the build (apps/builds/ssh_access.py)."""

    chroots = forms.ChoiceField(widget=forms.RadioSelect, help_text="The one chroot to build in.")
    ssh_public_keys = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        label="SSH public keys",
        help_text="One per line, as in ~/.ssh/id_ed25519.pub. They reach only this build's "
        "machine, and only the build's sandbox there.",
    )
    ssh_hours = forms.IntegerField(
        min_value=1,
        initial=1,
        label="Keep the machine for (hours)",
        help_text="After the build; you can destroy it sooner on the build's page.",
    )

    def __init__(self, *args, build, **kwargs):
        super().__init__(*args, build=build, **kwargs)
        # The service checks the bound (SSH_DEBUG_MAX_HOURS); the form only says it.
        self.fields["ssh_hours"].help_text += f" At most {settings.SSH_DEBUG_MAX_HOURS}."
        requested = build.requested_chroots
        self.initial["chroots"] = requested[0] if len(requested) == 1 else None

    def options(self) -> BuildOptions:
        data = self.cleaned_data
        return BuildOptions(
            chroots=[data["chroots"]],
            enable_net=data["enable_net"],
            timeout=data["timeout"],
            background=data["background"],
            after_build_id=data["after_build_id"],
            with_build_id=data["with_build_id"],
            ssh_public_keys=data["ssh_public_keys"],
            ssh_hours=data["ssh_hours"],
        )


# Every source type by its API name, from the source methods' registry.
SOURCES: dict[str, type[SourceForm]] = {name: method.form for name, method in METHODS.items()}


def build_form(source: type[SourceForm]) -> type[BuildForm]:
    """The new-build form of one source type: the build options, then its fields."""
    name = source.__name__.removesuffix("Source") + "BuildForm"
    return type(name, (BuildForm, source), {"__module__": __name__})


SOURCE_FORMS: dict[str, type[BuildForm]] = {
    name: build_form(source) for name, source in SOURCES.items()
}


def build_options(data: dict, **more) -> BuildOptions:
    """The options both forms share, from their cleaned data."""
    return BuildOptions(
        chroots=data["chroots"] or None,
        enable_net=data["enable_net"],
        timeout=data["timeout"],
        background=data["background"],
        **more,
    )
