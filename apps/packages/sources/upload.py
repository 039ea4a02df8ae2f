"""Upload: an SRPM or spec file sent with the build (its checks run on the file at submit)."""

from pathlib import Path, PurePosixPath

from django import forms

from apps.core.errors import ServiceError
from apps.core.paths import PathEscape, results_path
from apps.packages.models import SourceType
from apps.packages.sources.base import SourceForm, SourceMethod, UploadFile


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


class UploadMethod(SourceMethod):
    name = SourceType.UPLOAD
    form = UploadSource
    package_source = False

    def check(self, source_json: dict) -> None:
        raise ServiceError("An upload source needs the file itself: submit it as an upload.")

    def job_source(
        self, build, source_json: dict, source: dict, *, upload_file: UploadFile
    ) -> dict:
        if source_json.get("filed_srpm"):
            return {"type": "upload", "path": str(filed_srpm_path(source_json["filed_srpm"]))}
        path = upload_file(source_json["pkg"])
        if path is None:
            raise ServiceError(
                f"the uploaded file {source_json['pkg']} is gone from the web role's "
                "UPLOADS_ROOT (when the web runs on another host, set WEB_INTERNAL_URL)"
            )
        return {"type": "upload", "path": str(path)}


def filed_srpm_path(relative: str) -> Path:
    """The source RPM an earlier build filed in this backend's results (a resubmit's)."""
    try:
        path = results_path(*PurePosixPath(relative).parts)
    except PathEscape:
        path = None
    if path is None or not path.is_file():
        raise ServiceError(
            f"the source RPM {relative} is no longer in the results (its build was deleted?): "
            "submit the file again as a new build"
        )
    return path


METHOD = UploadMethod()
