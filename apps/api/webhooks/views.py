"""Webhook endpoints: forges (GitHub, GitLab, Bitbucket, Pagure) and the custom POST URL."""

import logging

from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.api.webhooks import forges
from apps.builds.package_builds import custom_webhook_build, webhook_rebuild
from apps.core.errors import ServiceError
from apps.core.input_checks import NotJSON, json_loads
from apps.core.names import MAX_BIGINT
from apps.packages.models import Package
from apps.packages.services import webhook_record
from apps.projects.models import Project

logger = logging.getLogger(__name__)
# Larger bodies are refused before they are parsed; forges send far less.
MAX_PAYLOAD_BYTES = 5 * 1024 * 1024


def text(message: str, status: int = 200) -> HttpResponse:
    return HttpResponse(message + "\n", status=status, content_type="text/plain")


def project_or_none(copr_id) -> Project | None:
    # The URL takes any run of digits; past bigint the database would fail with a 500.
    if int(copr_id) > MAX_BIGINT:
        return None
    return Project.objects.filter(pk=copr_id).first()


def delivery_id(request: HttpRequest) -> str:
    for header in ("X-GitHub-Delivery", "X-Gitlab-Webhook-UUID", "X-Hook-UUID", "X-Request-ID"):
        if request.headers.get(header):
            return request.headers[header]
    return ""


class Hook:
    """One received webhook: authentication, payload, and the record of what it did."""

    def __init__(self, request: HttpRequest, provider: str, copr_id: int, uuid: str) -> None:
        self.request = request
        self.provider = provider
        self.project = project_or_none(copr_id)
        self.uuid = uuid
        self.event = ""

    def record(self, outcome: str, *, secret_valid: bool = True) -> None:
        if self.project is not None:
            webhook_record(
                project=self.project,
                provider=self.provider,
                event=self.event,
                delivery=delivery_id(self.request),
                user_agent=self.request.headers.get("User-Agent", ""),
                outcome=outcome,
                secret_valid=secret_valid,
            )

    def reject(self, message: str, status: int, *, secret_valid: bool = True) -> HttpResponse:
        self.record(f"rejected ({status}): {message}", secret_valid=secret_valid)
        return text(message, status)

    def check_project_and_secret(self) -> HttpResponse | None:
        if self.project is None:
            return text("PROJECT_NOT_FOUND", 404)
        if not forges.token_valid(self.project.webhook_secret, self.uuid):
            message = "BAD_UUID: the webhook secret in the URL is wrong"
            return self.reject(message, 403, secret_valid=False)
        if len(self.request.body) > MAX_PAYLOAD_BYTES:
            return self.reject("payload too large", 413)
        return None

    def payload(self) -> dict:
        try:
            data = json_loads(self.request.body or b"{}")
        except NotJSON as error:
            raise forges.WebhookRejected("the payload is not JSON") from error
        except ServiceError as error:  # too deep, or NUL in its text
            raise forges.WebhookRejected(error.message) from error
        if not isinstance(data, dict):
            raise forges.WebhookRejected("the payload is not a JSON object")
        return data

    def rebuild(self, push: forges.Push | None, package_name: str | None) -> HttpResponse:
        if push is None:
            self.record("ignored: this event builds nothing")
            return text("OK")
        packages = forges.packages_to_rebuild(self.project, push, package_name)
        if not packages:
            self.record(f"no package matches {push.ref or push.tag}")
            return text("OK")
        _, lines = webhook_rebuild(
            project=self.project,
            packages=packages,
            submitted_by=push.submitted_by or self.provider,
            committish=push.committish,
        )
        self.record("; ".join(lines))
        return text("OK")


def handle(request, provider, copr_id, uuid, pkg_name, authenticate, parse) -> HttpResponse:
    hook = Hook(request, provider, copr_id, uuid)
    refused = hook.check_project_and_secret()
    if refused is not None:
        return refused
    hook.event = parse_event(request)
    try:
        authenticate(hook)
        push = parse(hook.event, hook.payload())
    except forges.WebhookRejected as rejected:
        return hook.reject(rejected.message, rejected.status)
    if hook.event == "ping":
        hook.record("ping")
        return text("OK")
    return hook.rebuild(push, pkg_name)


def parse_event(request: HttpRequest) -> str:
    for header in ("X-GitHub-Event", "X-Gitlab-Event", "X-Event-Key", "X-Pagure-Topic"):
        if request.headers.get(header):
            return request.headers[header]
    return ""


def github_authenticate(hook: Hook) -> None:
    """The URL secret admits the request; a signature, when GitHub sends one, must match."""
    signature = hook.request.headers.get("X-Hub-Signature-256")
    if signature is not None and not forges.github_signature_valid(
        hook.project.webhook_secret, hook.request.body, signature
    ):
        raise forges.WebhookRejected("bad X-Hub-Signature-256 signature", 403)


def gitlab_authenticate(hook: Hook) -> None:
    token = hook.request.headers.get("X-Gitlab-Token")
    if token is not None and not forges.token_valid(hook.project.webhook_secret, token):
        raise forges.WebhookRejected("bad X-Gitlab-Token", 403)


def no_extra_authentication(hook: Hook) -> None:
    return None


@csrf_exempt
@require_POST
def github(request, copr_id: int, uuid: str, pkg_name: str | None = None) -> HttpResponse:
    return handle(
        request, "github", copr_id, uuid, pkg_name, github_authenticate, forges.github_push
    )


@csrf_exempt
@require_POST
def gitlab(request, copr_id: int, uuid: str, pkg_name: str | None = None) -> HttpResponse:
    return handle(
        request,
        "gitlab",
        copr_id,
        uuid,
        pkg_name,
        gitlab_authenticate,
        lambda event, payload: forges.gitlab_push(payload),
    )


@csrf_exempt
@require_POST
def bitbucket(request, copr_id: int, uuid: str, pkg_name: str | None = None) -> HttpResponse:
    return handle(
        request,
        "bitbucket",
        copr_id,
        uuid,
        pkg_name,
        no_extra_authentication,
        lambda event, payload: forges.bitbucket_push(payload),
    )


@csrf_exempt
@require_POST
def pagure(request, copr_id: int, uuid: str, pkg_name: str | None = None) -> HttpResponse:
    return handle(
        request,
        "pagure",
        copr_id,
        uuid,
        pkg_name,
        no_extra_authentication,
        lambda event, payload: forges.pagure_push(payload),
    )


@csrf_exempt
@require_POST
def custom(request, copr_id: int, uuid: str, package_name: str) -> HttpResponse:
    """Copr's custom webhook: any POST rebuilds the package; the answer is the build id."""
    hook = Hook(request, "custom", copr_id, uuid)
    hook.event = "custom"
    refused = hook.check_project_and_secret()
    if refused is not None:
        return refused
    package = Package.objects.filter(project=hook.project, name=package_name).first()
    if package is None:
        return hook.reject("PACKAGE_NOT_FOUND", 404)
    if request.headers.get("X-GitHub-Event") == "ping":
        hook.record("ping")
        return text("OK")
    try:
        build = custom_webhook_build(
            package=package, payload=request.body, submitted_by="custom webhook"
        )
    except ServiceError as error:
        return hook.reject(f"BUILD_REQUEST_ERROR: {error.message}", 500)
    hook.record(f"{package.name}: build {build.pk}")
    return text(str(build.pk))
