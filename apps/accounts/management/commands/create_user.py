"""Create or update a user and print a ready [copr-cli] config section with a fresh token."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apps.accounts.config_snippet import copr_cli_config
from apps.accounts.models import NAME_VALIDATOR
from apps.accounts.services import api_token_regenerate, user_create_or_update


class Command(BaseCommand):
    help = "Create (or update) a user and print their ~/.config/copr section."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument(
            "--staff",
            action="store_true",
            help="Make the user a Copr admin (chroots, users, projects, builds; not pools).",
        )
        parser.add_argument(
            "--superuser",
            action="store_true",
            help="Make the user a superuser: also builder pools, whose commands run as root.",
        )
        parser.add_argument(
            "--group",
            action="append",
            dest="groups",
            metavar="NAME",
            help="Make the user a member of @NAME (repeatable); replaces earlier memberships.",
        )
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="Set a password for web login.")

    def handle(self, *args, username, staff, superuser, groups, email, password, **options):
        try:
            NAME_VALIDATOR(username)
        except ValidationError as error:
            reason = " ".join(error.messages)
            raise CommandError(f"Invalid username {username!r}: {reason}") from error
        user, created = user_create_or_update(
            username=username,
            email=email,
            is_staff=True if staff else None,
            is_superuser=True if superuser else None,
            password=password,
            group_names=groups,
        )
        issued = api_token_regenerate(user=user)
        self.stderr.write(f"{'Created' if created else 'Updated'} user {username}.")
        self.stdout.write(copr_cli_config(username=username, issued=issued), ending="")
