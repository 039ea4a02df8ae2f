"""Package forms: one per source type, its fields taken from the new-build source forms."""

from django import forms

from apps.core.names import PACKAGE_LENGTH_MESSAGE
from apps.packages.models import PACKAGE_NAME_VALIDATOR, Package, SourceType
from apps.packages.sources import METHODS, PACKAGE_SOURCE_TYPES
from apps.packages.sources.base import SourceForm

# Package.max_builds and Package.timeout carry the same bounds as validators.
MAX_BUILDS_LIMIT = 100
TIMEOUT_LIMIT = 108000


class PackageForm(SourceForm):
    """A package's settings besides its source, mixed with one source type (`ScmPackageForm`)."""

    webhook_rebuild = forms.BooleanField(
        required=False,
        label="Auto-rebuild",
        help_text="Rebuild when a webhook (GitHub, GitLab, Bitbucket, Pagure) reports a push.",
    )
    max_builds = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=MAX_BUILDS_LIMIT,
        help_text="Keep only this many newest builds; empty or 0 keeps them all.",
    )
    timeout = forms.IntegerField(
        required=False,
        min_value=0,
        max_value=TIMEOUT_LIMIT,
        help_text="Build timeout in seconds; empty or 0 for the default.",
    )
    chroot_denylist = forms.CharField(
        required=False,
        max_length=1000,
        label="Chroot denylist",
        help_text="Chroots not to build in, space separated; fnmatch patterns such as epel-*.",
    )

    settings_fields = ("webhook_rebuild", "max_builds", "timeout", "chroot_denylist")

    def set_source_choices(self) -> None:
        super().set_source_choices()
        if "package_name" in self.fields:
            # A package's DistGit repository is named after it unless told otherwise.
            self.fields["package_name"].required = False
            self.fields["package_name"].help_text = "Empty: the package's name."

    @classmethod
    def initial_for(cls, package: Package) -> dict:
        initial = {name: value for name, value in package.source_json.items()}
        initial["webhook_rebuild"] = package.webhook_rebuild
        initial["max_builds"] = package.max_builds
        initial["timeout"] = package.timeout
        initial["chroot_denylist"] = " ".join(package.chroot_denylist)
        return initial

    def settings(self) -> dict:
        """Keyword arguments of package_add / package_edit besides the source."""
        data = self.cleaned_data
        return {
            "webhook_rebuild": data["webhook_rebuild"],
            "max_builds": data["max_builds"],
            "timeout": data["timeout"],
            "chroot_denylist": data["chroot_denylist"].split(),
        }

    def visible_settings_fields(self):
        return [self[name] for name in self.settings_fields]


class PackageAddForm(PackageForm):
    """A new package: its name comes first."""

    name = forms.CharField(
        max_length=100,
        validators=[PACKAGE_NAME_VALIDATOR],
        error_messages={"max_length": PACKAGE_LENGTH_MESSAGE},
    )

    def visible_source_fields(self):
        return [self["name"], *super().visible_source_fields()]


def package_form(source: type[SourceForm], base: type[PackageForm]) -> type[PackageForm]:
    name = source.__name__.removesuffix("Source") + base.__name__
    return type(name, (base, source), {"__module__": __name__})


# Source types a package can keep (an upload is one build's file, not a default source).
PACKAGE_SOURCES = {name: m.form for name, m in METHODS.items() if name in PACKAGE_SOURCE_TYPES}
PACKAGE_ADD_FORMS = {name: package_form(s, PackageAddForm) for name, s in PACKAGE_SOURCES.items()}
PACKAGE_EDIT_FORMS = {name: package_form(s, PackageForm) for name, s in PACKAGE_SOURCES.items()}
DEFAULT_SOURCE_TYPE = SourceType.SCM
