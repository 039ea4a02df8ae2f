"""The operator console's name: it is coprsite's, not a generic Django one."""

from django.contrib import admin

admin.site.site_header = "coprsite console"
admin.site.site_title = "coprsite console"
admin.site.index_title = "Operator console"
# The section list beside every page leaves the changelists too narrow for their columns.
admin.site.enable_nav_sidebar = False


def all_fields(model) -> tuple[str, ...]:
    return tuple(field.name for field in model._meta.concrete_fields)


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows made by the services only: nothing is added, edited or deleted by hand here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # view pages without Save buttons; the actions still run

    def get_readonly_fields(self, request, obj=None):
        return all_fields(self.model) + tuple(self.readonly_fields)
