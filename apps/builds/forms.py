"""Source-type fields and new-build forms; adding a type is one class in SOURCES.

A `SourceForm` subclass holds one type's fields and turns them into Copr's `source_json`;
it is the only definition of that type's fields. New builds mix in `BuildForm` (chroots,
network, timeout, background) and go to `build_submit`; packages mix in their settings
(`apps.packages.forms`). `apps.builds.sources.check_source` checks the result.
"""

from typing import ClassVar

from django import forms

from apps.builds.services import BuildOptions
from apps.fleet.selectors import served_arches
from apps.packages.models import DistGitInstance, SourceType
from apps.projects.models import Chroot, Project


class SourceForm(forms.Form):
    """One source type's fields; `source_json()` turns them into Copr's source_json."""

    source_type: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    source_fields: ClassVar[tuple[str, ...]] = ()
    is_multipart: ClassVar[bool] = False

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.set_source_choices()

    def set_source_choices(self) -> None:
        """Fill choices read from the database (chroots, DistGit instances)."""

    def source_json(self) -> dict:
        """Copr's source_json of this type, from the cleaned fields."""
        return {name: self.cleaned_data[name] for name in self.source_fields}

    def upload(self):
        """The uploaded file, for the types that take one."""
        return None

    def visible_source_fields(self):
        return [self[name] for name in self.source_fields]


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
        data = self.cleaned_data
        return BuildOptions(
            chroots=data["chroots"] or None,
            enable_net=data["enable_net"],
            timeout=data["timeout"],
            background=data["background"],
        )

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


class UploadSource(SourceForm):
    source_type = SourceType.UPLOAD
    title = "Upload"
    description = "Upload an SRPM or a spec file from your computer."
    source_fields = ("pkgs",)
    is_multipart = True

    pkgs = forms.FileField(label="SRPM or spec file")

    def source_json(self) -> dict:
        return {}  # build_submit records the stored file's name

    def upload(self):
        return self.cleaned_data["pkgs"]


class LinkSource(SourceForm):
    source_type = SourceType.LINK
    title = "From a URL"
    description = "A URL of an SRPM or a spec file; the builder downloads it."
    source_fields = ("url",)

    url = forms.URLField(label="SRPM or spec URL", assume_scheme="https")


class ScmSource(SourceForm):
    source_type = SourceType.SCM
    title = "SCM"
    description = "Build from a Git or Subversion repository."
    source_fields = ("type", "clone_url", "committish", "subdirectory", "spec", "srpm_build_method")

    type = forms.ChoiceField(choices=[("git", "git"), ("svn", "svn")], label="Type")
    clone_url = forms.CharField(label="Clone URL", max_length=500)
    committish = forms.CharField(
        required=False, max_length=200, help_text="Branch, tag or commit; empty: the default."
    )
    subdirectory = forms.CharField(required=False, max_length=200)
    spec = forms.CharField(required=False, max_length=200, label="Spec file")
    srpm_build_method = forms.ChoiceField(
        label="How to build the SRPM",
        choices=[(m, m) for m in ("rpkg", "tito", "tito_test", "make_srpm")],
    )


class PypiSource(SourceForm):
    source_type = SourceType.PYPI
    title = "PyPI"
    description = "Package a Python project from PyPI with pyp2spec or pyp2rpm."
    source_fields = (
        "pypi_package_name",
        "pypi_package_version",
        "spec_generator",
        "spec_template",
        "python_versions",
    )

    pypi_package_name = forms.CharField(label="PyPI name", max_length=200)
    pypi_package_version = forms.CharField(
        required=False, max_length=100, label="Version", help_text="Empty: the latest."
    )
    spec_generator = forms.ChoiceField(choices=[("pyp2spec", "pyp2spec"), ("pyp2rpm", "pyp2rpm")])
    spec_template = forms.ChoiceField(
        required=False,
        choices=[(t, t or "(default)") for t in ("", "fedora", "epel7", "mageia", "pld")],
        help_text="pyp2rpm only.",
    )
    python_versions = forms.MultipleChoiceField(
        required=False,  # pyp2spec does not use it
        choices=[("3", "3"), ("2", "2")],
        initial=["3"],
        widget=forms.CheckboxSelectMultiple,
        help_text="pyp2rpm only.",
    )


class RubygemsSource(SourceForm):
    source_type = SourceType.RUBYGEMS
    title = "RubyGems"
    description = "Package a gem from rubygems.org with gem2rpm."
    source_fields = ("gem_name",)

    gem_name = forms.CharField(label="Gem name", max_length=200)


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


# Every source type by its API name; packages take all of them but the upload.
SOURCES: dict[str, type[SourceForm]] = {
    source.source_type: source
    for source in (
        UploadSource,
        LinkSource,
        ScmSource,
        PypiSource,
        RubygemsSource,
        CustomSource,
        DistGitSource,
    )
}


def build_form(source: type[SourceForm]) -> type[BuildForm]:
    """The new-build form of one source type: the build options, then its fields."""
    name = source.__name__.removesuffix("Source") + "BuildForm"
    return type(name, (BuildForm, source), {"__module__": __name__})


SOURCE_FORMS: dict[str, type[BuildForm]] = {
    name: build_form(source) for name, source in SOURCES.items()
}
