"""URLs of the site-wide pages."""

from django.urls import path

from apps.site import views

urlpatterns = [
    path("", views.home, name="home"),
    path("search/", views.search, name="search"),
    path("status/", views.status, name="status"),
    path("user/<str:username>/", views.user_detail, name="user-detail"),
]
