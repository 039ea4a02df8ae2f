"""Forms of the project pages: create and settings, permission requests and decisions."""

from datetime import datetime, time, timedelta

from django import forms
from django.utils import timezone

from apps.projects.models import (
    PROJECT_NAME_VALIDATOR,
    BootstrapChoice,
    Chroot,
    IsolationChoice,
    PermissionLevel,
    Project,
)

BOOLEAN_SETTINGS = (
    "enable_net",
    "unlisted_on_hp",
    "devel_mode",
    "follow_fedora_branching",
    "multilib",
    "module_hotfixes",
    "fedora_review",
    "appstream",
)
TEXT_SETTINGS = ("description", "instructions", "homepage", "contact", "bootstrap", "isolation")
LIST_SETTINGS = ("additional_repos", "runtime_dependencies")


def words(text: str) -> list[str]:
    """A list typed one per line or separated by spaces, as Copr's forms take repos."""
    return text.split()


def delete_after_from_days(days: int | None) -> datetime | None:
    """Copr's delete_after_days: empty or -1 keeps the project, else midnight after N+1 days."""
    if days is None or days < 0:
        return None
    day = (timezone.now() + timedelta(days=days + 1)).date()
    return datetime.combine(day, time.min, tzinfo=timezone.get_current_timezone())


def days_until(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    return max((moment - timezone.now()).days, 0)


def active_chroot_choices() -> list[tuple[str, str]]:
    names = Chroot.objects.filter(is_active=True).order_by("name").values_list("name", flat=True)
    return [(name, name) for name in names]


class ProjectSettingsForm(forms.Form):
    """Everything a project's owner may set; `service_fields()` is what the services take."""

    chroots = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple, required=True)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), required=False)
    instructions = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="How to use the packages, shown on the project page.",
    )
    homepage = forms.URLField(required=False, assume_scheme="https")
    contact = forms.CharField(
        required=False, max_length=200, help_text="An email address or a URL for bug reports."
    )
    additional_repos = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Repositories builds install from, one per line (copr://owner/project works).",
    )
    runtime_dependencies = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Repositories users also need to install these packages, one per line.",
    )
    enable_net = forms.BooleanField(required=False, label="Enable network access during builds")
    unlisted_on_hp = forms.BooleanField(required=False, label="Do not list on the home page")
    devel_mode = forms.BooleanField(
        required=False, label="Development mode: do not publish new builds automatically"
    )
    follow_fedora_branching = forms.BooleanField(required=False, initial=True)
    multilib = forms.BooleanField(required=False, label="Multilib (i386 next to x86_64)")
    module_hotfixes = forms.BooleanField(required=False)
    fedora_review = forms.BooleanField(required=False, label="Run fedora-review after builds")
    appstream = forms.BooleanField(required=False, label="Generate AppStream metadata")
    bootstrap = forms.ChoiceField(choices=BootstrapChoice.choices, initial=BootstrapChoice.DEFAULT)
    isolation = forms.ChoiceField(choices=IsolationChoice.choices, initial=IsolationChoice.DEFAULT)
    repo_priority = forms.IntegerField(required=False, min_value=1)
    delete_after_days = forms.IntegerField(
        required=False,
        min_value=-1,
        max_value=720,
        help_text="Delete the project after this many days; empty or -1 keeps it.",
    )

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["chroots"].choices = active_chroot_choices()

    @classmethod
    def initial_for(cls, project: Project) -> dict:
        initial = {name: getattr(project, name) for name in BOOLEAN_SETTINGS + TEXT_SETTINGS}
        initial.update({name: "\n".join(getattr(project, name)) for name in LIST_SETTINGS})
        initial["repo_priority"] = project.repo_priority
        initial["delete_after_days"] = days_until(project.delete_after)
        initial["chroots"] = [pc.chroot.name for pc in project.project_chroots.all()]
        return initial

    def service_fields(self) -> dict:
        """Keyword arguments for project_create / project_edit (chroot_names included)."""
        data = self.cleaned_data
        fields = {name: data[name] for name in BOOLEAN_SETTINGS + TEXT_SETTINGS}
        fields.update({name: words(data[name]) for name in LIST_SETTINGS})
        fields["repo_priority"] = data["repo_priority"]
        fields["delete_after"] = delete_after_from_days(data["delete_after_days"])
        fields["chroot_names"] = data["chroots"]
        return fields


class ProjectCreateForm(ProjectSettingsForm):
    """A new project: its owner (the user or one of their @groups) and name come first."""

    owner = forms.ChoiceField()
    name = forms.CharField(max_length=100, validators=[PROJECT_NAME_VALIDATOR])
    field_order = ["owner", "name"]

    def __init__(self, *args, owner_choices: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [(name, name) for name in owner_choices]


class PermissionRequestForm(forms.Form):
    """What a user asks for in someone else's project."""

    def __init__(self, *args, **kwargs):
        # Django sets label_suffix in __init__: a class attribute of that name is ignored.
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    builder = forms.BooleanField(required=False, label="Builder: submit and cancel builds")
    admin = forms.BooleanField(required=False, label="Admin: edit the project and its packages")


class PermissionGrantForm(forms.Form):
    """A project admin gives rights to a user by name, without waiting for a request."""

    def __init__(self, *args, **kwargs):
        # Django sets label_suffix in __init__: a class attribute of that name is ignored.
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    username = forms.CharField(max_length=150, label="User name")
    builder = forms.BooleanField(required=False, label="Builder")
    admin = forms.BooleanField(required=False, label="Admin")

    def clean(self):
        data = super().clean()
        if not data.get("builder") and not data.get("admin"):
            raise forms.ValidationError("Tick builder, admin or both.")
        return data

    def levels(self) -> dict:
        """`permission_set` arguments: ticked rights become approved, the rest stay as they are."""
        approved = PermissionLevel.APPROVED
        return {
            right: approved if self.cleaned_data[right] else None for right in ("builder", "admin")
        }


class PermissionDecisionForm(forms.Form):
    """One select per user and right, for those who can administer the project."""

    def __init__(self, *args, permissions, **kwargs):
        super().__init__(*args, **kwargs)
        self.permissions = list(permissions)
        for permission in self.permissions:
            for right in ("builder", "admin"):
                self.fields[self.field_name(right, permission.user_id)] = forms.ChoiceField(
                    choices=PermissionLevel.choices,
                    initial=getattr(permission, right),
                    required=False,  # a row left out keeps its stored levels
                    label=f"{right} for {permission.user.username}",
                )

    @staticmethod
    def field_name(right: str, user_id: int) -> str:
        return f"{right}_{user_id}"

    def rows(self):
        """(permission, builder field, admin field) for the template's table."""
        for permission in self.permissions:
            yield (
                permission,
                self[self.field_name("builder", permission.user_id)],
                self[self.field_name("admin", permission.user_id)],
            )

    def changes(self) -> list[tuple]:
        """(user, builder, admin) for every row whose levels differ from the stored ones."""
        changed = []
        for permission in self.permissions:
            builder = self.cleaned_data[self.field_name("builder", permission.user_id)]
            admin = self.cleaned_data[self.field_name("admin", permission.user_id)]
            builder, admin = builder or permission.builder, admin or permission.admin
            if (builder, admin) != (permission.builder, permission.admin):
                changed.append((permission.user, builder, admin))
        return changed


# --- per-chroot settings, fork ------------------------------------------------------------

UNCHANGED = ("unchanged", "unchanged (the project's setting)")
CHROOT_BOOTSTRAPS = [UNCHANGED, *BootstrapChoice.choices, ("custom_image", "custom image")]
CHROOT_ISOLATIONS = [UNCHANGED, *IsolationChoice.choices]
CHROOT_LIST_SETTINGS = ("additional_packages", "with_opts", "without_opts")
# comps.xml files of whole distributions are a few hundred kB; more is a mistake.
MAX_COMPS_BYTES = 5 * 1024 * 1024


def modules(text: str) -> list[str]:
    """Copr's module toggle, `mod:stream, !mod2:stream`: commas or spaces between modules."""
    return text.replace(",", " ").split()


class ProjectChrootForm(forms.Form):
    """Build settings of one chroot in a project; the chroot's name prefixes the fields."""

    additional_repos = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 2}),
        required=False,
        help_text="Repositories builds in this chroot also use, one per line.",
    )
    additional_packages = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Packages installed into the buildroot, space separated.",
    )
    additional_modules = forms.CharField(
        required=False,
        max_length=2000,
        label="Modules",
        help_text="Modules to enable or disable: mod:stream, !mod2:stream.",
    )
    with_opts = forms.CharField(
        required=False,
        max_length=1000,
        label="With options",
        help_text="mock --with, space separated.",
    )
    without_opts = forms.CharField(
        required=False,
        max_length=1000,
        label="Without options",
        help_text="mock --without, space separated.",
    )
    bootstrap = forms.ChoiceField(choices=CHROOT_BOOTSTRAPS, initial="unchanged")
    bootstrap_image = forms.CharField(
        required=False, max_length=200, help_text="Container image, for a custom image bootstrap."
    )
    isolation = forms.ChoiceField(choices=CHROOT_ISOLATIONS, initial="unchanged")
    comps = forms.FileField(required=False, label="comps.xml", help_text="Optional package groups.")
    delete_comps = forms.BooleanField(required=False, label="Remove the uploaded comps.xml")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)

    @classmethod
    def initial_for(cls, project_chroot) -> dict:
        initial = {name: " ".join(getattr(project_chroot, name)) for name in CHROOT_LIST_SETTINGS}
        initial["additional_repos"] = "\n".join(project_chroot.additional_repos)
        initial["additional_modules"] = ", ".join(project_chroot.additional_modules)
        for name in ("bootstrap", "bootstrap_image", "isolation"):
            initial[name] = getattr(project_chroot, name)
        return initial

    def clean_comps(self) -> tuple[str, str] | None:
        upload = self.cleaned_data["comps"]
        if not upload:
            return None
        if upload.size > MAX_COMPS_BYTES:
            raise forms.ValidationError(f"comps.xml is larger than {MAX_COMPS_BYTES} bytes.")
        try:
            return upload.name, upload.read().decode()
        except UnicodeDecodeError as error:
            raise forms.ValidationError("comps.xml must be UTF-8 text.") from error

    def clean(self):
        data = super().clean()
        if data.get("bootstrap") == "custom_image" and not data.get("bootstrap_image"):
            self.add_error("bootstrap_image", "A custom image bootstrap needs the image name.")
        return data

    def service_fields(self) -> dict:
        """Keyword arguments of project_chroot_edit besides the user and the chroot."""
        data = self.cleaned_data
        fields = {name: words(data[name]) for name in CHROOT_LIST_SETTINGS}
        fields["additional_repos"] = words(data["additional_repos"])
        fields["additional_modules"] = modules(data["additional_modules"])
        for name in ("bootstrap", "bootstrap_image", "isolation"):
            fields[name] = data[name]
        fields["comps"] = data["comps"]
        fields["delete_comps"] = data["delete_comps"]
        return fields


class ProjectForkForm(forms.Form):
    """Where to fork to: the user or one of their @groups, and the fork's name."""

    owner = forms.ChoiceField()
    name = forms.CharField(max_length=100, validators=[PROJECT_NAME_VALIDATOR])
    confirm = forms.BooleanField(
        required=False,
        label="The project exists already: fork into it anyway",
        help_text="Copies the packages and builds into the existing project.",
    )

    def __init__(self, *args, owner_choices: list[str], **kwargs):
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [(name, name) for name in owner_choices]
