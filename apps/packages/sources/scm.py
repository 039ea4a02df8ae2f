"""SCM: a git or Subversion repository, made into an SRPM with rpkg, tito or make_srpm."""

from urllib.parse import urlsplit

from django import forms

from apps.core.errors import ServiceError
from apps.packages.models import SourceType
from apps.packages.sources.base import (
    SourceForm,
    SourceMethod,
    UploadFile,
    check_committish,
    relative_path,
    text_field,
)

SCM_TYPES = ("git", "svn")
SCM_METHODS = ("rpkg", "tito", "tito_test", "make_srpm")
SCM_URL_SCHEMES = ("http", "https", "git", "ssh", "svn", "svn+ssh")


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


class ScmMethod(SourceMethod):
    name = SourceType.SCM
    form = ScmSource
    error_field = "clone_url"
    api_keys = ("type", "clone_url", "committish", "subdirectory", "spec", "srpm_build_method")
    api_defaults = {
        "type": "git",
        "committish": "",
        "subdirectory": "",
        "spec": "",
        "srpm_build_method": "rpkg",
    }
    api_renames = {"source_build_method": "srpm_build_method", "scm_type": "type"}

    def check(self, source_json: dict) -> None:
        scm_type = text_field(source_json, "type") or "git"
        if scm_type not in SCM_TYPES:
            raise ServiceError(f"SCM type must be one of {', '.join(SCM_TYPES)}, not '{scm_type}'.")
        check_clone_url(text_field(source_json, "clone_url", required=True))
        check_committish(source_json)
        relative_path(source_json, "subdirectory")
        relative_path(source_json, "spec")
        method = text_field(source_json, "srpm_build_method") or "rpkg"
        if method not in SCM_METHODS:
            raise ServiceError(
                f"srpm_build_method must be one of {', '.join(SCM_METHODS)}, not '{method}'."
            )

    def job_source(
        self, build, source_json: dict, source: dict, *, upload_file: UploadFile
    ) -> dict:
        # Copr's scm `type` (git/svn) travels as `scm_type`, so it cannot hide the source type.
        return {**source, "scm_type": source_json.get("type") or "git"}


def check_clone_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in SCM_URL_SCHEMES or not parts.hostname:
        raise ServiceError(
            f"clone_url must be a remote repository URL "
            f"({', '.join(SCM_URL_SCHEMES)}), not '{url}'."
        )


METHOD = ScmMethod()
