"""Create a superuser account when none exists, printing its one-time password."""

import secrets

from django.core.management.base import BaseCommand

from apps.accounts.models import User
from apps.accounts.services import user_create_or_update


class Command(BaseCommand):
    help = "Create the first admin account (username 'admin') if there is no superuser."

    def handle(self, *args, **options):
        # A superuser: someone must be able to set up the builder pools.
        if User.objects.filter(is_superuser=True, is_active=True).exists():
            return
        password = secrets.token_urlsafe(12)
        user_create_or_update(username="admin", is_superuser=True, password=password)
        self.stdout.write(
            "Created the admin account. Log in at /admin/ with\n"
            f"  username: admin\n  password: {password}\n"
            "This password is shown only once; change it after logging in."
        )
