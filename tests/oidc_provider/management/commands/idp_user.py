"""Create or update a provider user: password, e-mail, nickname and exactly these groups."""

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--password", required=True)
        parser.add_argument("--email", default="")
        parser.add_argument("--nickname", default="")
        parser.add_argument("--group", action="append", default=[])

    def handle(self, *args, username, password, email, nickname, group, **options):
        user, _ = User.objects.get_or_create(username=username)
        user.email = email or f"{username}@idp.example"
        user.first_name = nickname
        user.set_password(password)
        user.save()
        user.groups.set([Group.objects.get_or_create(name=name)[0] for name in group])
        self.stdout.write(str(user.pk))
