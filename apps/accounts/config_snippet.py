"""The `[copr-cli]` section for ~/.config/copr, as Copr's /api page shows it."""

from django.conf import settings

from apps.accounts.services import IssuedToken


def copr_cli_config(*, username: str, issued: IssuedToken) -> str:
    lines = [
        "[copr-cli]",
        f"login = {issued.login}",
        f"username = {username}",
        f"token = {issued.token}",
        f"copr_url = {settings.PUBLIC_URL}",
    ]
    if settings.PUBLIC_URL.startswith("http://"):
        # copr-cli refuses http:// URLs unless told the connection is not encrypted.
        lines.append("encrypted = False")
    lines.append(f"# expiration date: {issued.expires_on.isoformat()}")
    return "\n".join(lines) + "\n"
