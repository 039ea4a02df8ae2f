"""Operator console for users, @groups, OIDC identities and API tokens."""

from allauth.account.models import EmailAddress
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group as DjangoGroup

from apps.accounts.models import ApiToken, Group, OidcIdentity, UploadSlot, User
from apps.accounts.services import user_disable

# One section per app: allauth's e-mail addresses would be a second "Accounts" section (the
# addresses come from the identity providers), and Django's permission groups a second
# "Groups" beside the @groups that own projects; operators use neither.
for model in (EmailAddress, DjangoGroup):
    if admin.site.is_registered(model):
        admin.site.unregister(model)


def touches_a_superuser(request, user) -> bool:
    """Staff may not change a superuser's account, nor what logs into it: that would be root."""
    return user is not None and user.is_superuser and not request.user.is_superuser


class SuperuserAccountsGuard:
    """For admins of rows that belong to a user: staff cannot pick or change a superuser's."""

    def has_change_permission(self, request, obj=None):
        owner = getattr(obj, "user", None)
        return not touches_a_superuser(request, owner) and super().has_change_permission(
            request, obj
        )

    def has_delete_permission(self, request, obj=None):
        owner = getattr(obj, "user", None)
        return not touches_a_superuser(request, owner) and super().has_delete_permission(
            request, obj
        )

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "user" and not request.user.is_superuser:
            kwargs["queryset"] = User.objects.filter(is_superuser=False)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


# Who is staff or superuser, and with which permissions, is for superusers to decide.
ROLE_FIELDS = ("is_staff", "is_superuser", "groups", "user_permissions")


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "email", "is_active", "is_staff", "proven", "date_joined")
    list_filter = ("is_active", "is_staff", "proven")
    fieldsets = (*DjangoUserAdmin.fieldsets, ("coprsite", {"fields": ("proven",)}))
    actions = ["disable_users"]

    def get_readonly_fields(self, request, obj=None):
        readonly = tuple(super().get_readonly_fields(request, obj))
        return readonly if request.user.is_superuser else readonly + ROLE_FIELDS

    def has_change_permission(self, request, obj=None):
        return not touches_a_superuser(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not touches_a_superuser(request, obj) and super().has_delete_permission(request, obj)

    @admin.action(description="Disable the selected users (no login, no API token)")
    def disable_users(self, request, queryset):
        if not request.user.is_superuser:
            queryset = queryset.filter(is_superuser=False)
        for user in queryset:
            user_disable(user=user)
        messages.success(request, f"Disabled {queryset.count()} user(s).")


@admin.register(Group)
class GroupAdmin(admin.ModelAdmin):
    list_display = ("name", "external_name", "member_count")
    search_fields = ("name", "external_name")
    raw_id_fields = ("members",)

    @admin.display(description="members")
    def member_count(self, group):
        return group.members.count()


@admin.register(ApiToken)
class ApiTokenAdmin(SuperuserAccountsGuard, admin.ModelAdmin):
    list_display = ("login", "user", "created_on", "expires_on")
    list_select_related = ("user",)
    search_fields = ("login", "user__username")
    raw_id_fields = ("user",)
    readonly_fields = ("login", "token_hash", "created_on")
    list_filter = ("expires_on",)


@admin.register(OidcIdentity)
class OidcIdentityAdmin(SuperuserAccountsGuard, admin.ModelAdmin):
    """Link an existing account to an OIDC identity whose first login was refused (name taken)."""

    list_display = ("user", "issuer", "subject", "created_on", "last_login")
    list_select_related = ("user",)
    search_fields = ("user__username", "subject")
    raw_id_fields = ("user",)
    readonly_fields = ("created_on", "last_login")


@admin.register(UploadSlot)
class UploadSlotAdmin(admin.ModelAdmin):
    """Uploads in flight, per user (UPLOADS_PER_USER): to see who holds them, or free one."""

    list_display = ("user", "expires_on")
    list_select_related = ("user",)
    search_fields = ("user__username",)
    readonly_fields = ("user", "expires_on")

    def has_add_permission(self, request) -> bool:
        return False  # slots are taken by uploads, never by hand
