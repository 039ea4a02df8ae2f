"""Reusable reads of projects."""

from django.db import models
from django.db.models import Q


class ProjectQuerySet(models.QuerySet):
    def with_owner(self):
        return self.select_related("owner_user", "owner_group")

    def listed(self):
        """Projects shown on the home page and in public lists."""
        return self.filter(unlisted_on_hp=False)

    def by_ownername(self, ownername: str):
        """Filter by `alice` or `@packagers`."""
        if ownername.startswith("@"):
            return self.filter(owner_group__name=ownername[1:])
        return self.filter(owner_user__username=ownername)

    def for_user(self, user):
        """Projects `user` may build in: owned, through an @group, or by approved permission.

        Every project is public to read (as in Copr); this is the set a user can act in.
        Staff can act everywhere.
        """
        if not user.is_authenticated or not user.is_active:
            return self.none()
        if user.is_staff:
            return self.all()
        from apps.projects.models import PermissionLevel

        approved = PermissionLevel.APPROVED
        return self.filter(
            Q(owner_user=user)
            | Q(owner_group__members=user)
            | Q(permissions__user=user, permissions__builder=approved)
            | Q(permissions__user=user, permissions__admin=approved)
        ).distinct()
