"""Reusable reads of projects."""

from django.db import models
from django.db.models import Prefetch, Q

from apps.projects.choices import PermissionLevel


class ProjectQuerySet(models.QuerySet):
    def with_owner(self):
        return self.select_related("owner_user", "owner_group")

    def with_chroot_names(self):
        """Prefetch enabled chroots with only what lists show (name, active), not their
        settings and macros: a page of projects reads no JSON column of its chroots."""
        project_chroots = self.model.project_chroots.rel.related_model.objects.select_related(
            "chroot"
        ).only("project_id", "chroot_id", "chroot__name", "chroot__is_active")
        return self.prefetch_related(Prefetch("project_chroots", queryset=project_chroots))

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
        approved = PermissionLevel.APPROVED
        return self.filter(
            Q(owner_user=user)
            | Q(owner_group__members=user)
            | Q(permissions__user=user, permissions__builder=approved)
            | Q(permissions__user=user, permissions__admin=approved)
        ).distinct()
