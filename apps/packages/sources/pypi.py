"""PyPI: a Python project's release, whose spec pyp2spec or pyp2rpm writes on the builder."""

from django import forms

from apps.core.errors import ServiceError
from apps.core.names import as_list
from apps.packages.models import SourceType
from apps.packages.sources.base import SourceForm, SourceMethod, text_field

SPEC_GENERATORS = ("pyp2spec", "pyp2rpm")
PYP2RPM_TEMPLATES = ("", "fedora", "epel7", "mageia", "pld")


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


class PypiMethod(SourceMethod):
    name = SourceType.PYPI
    form = PypiSource
    error_field = "pypi_package_name"
    api_keys = (
        "pypi_package_name",
        "pypi_package_version",
        "spec_generator",
        "spec_template",
        "python_versions",
    )
    api_defaults = {
        "pypi_package_version": "",
        "spec_generator": "pyp2spec",
        "spec_template": "",
        "python_versions": ["3"],
    }

    def check(self, source_json: dict) -> None:
        name = text_field(source_json, "pypi_package_name", required=True)
        if not all(c.isalnum() or c in "-_." for c in name):
            raise ServiceError(f"Invalid PyPI package name '{name}'.")
        version = text_field(source_json, "pypi_package_version")
        if version and not all(c.isalnum() or c in "-_.+!" for c in version):
            raise ServiceError(f"Invalid PyPI package version '{version}'.")
        generator = text_field(source_json, "spec_generator") or "pyp2spec"
        if generator not in SPEC_GENERATORS:
            raise ServiceError(
                f"spec_generator must be one of {', '.join(SPEC_GENERATORS)}, not '{generator}'."
            )
        template = text_field(source_json, "spec_template")
        if template not in PYP2RPM_TEMPLATES:
            raise ServiceError(f"Unknown spec_template '{template}'.")
        versions = source_json.get("python_versions") or []
        if not isinstance(versions, list) or not all(
            isinstance(v, str | int) and str(v).replace(".", "").isdigit() for v in versions
        ):
            raise ServiceError('python_versions must be a list of versions such as ["3"].')

    def api_normalized(self, source: dict) -> dict:
        # copr-cli sends the versions as a list or as text ("3 2"); stored as a list of text.
        if "python_versions" in source:
            source["python_versions"] = [
                str(v) for v in as_list(source["python_versions"], "python_versions")
            ] or ["3"]
        return source


METHOD = PypiMethod()
