"""The operator console's name: it is coprsite's, not a generic Django one."""

from django.contrib import admin

admin.site.site_header = "coprsite console"
admin.site.site_title = "coprsite console"
admin.site.index_title = "Operator console"
# The section list beside every page leaves the changelists too narrow for their columns.
admin.site.enable_nav_sidebar = False
