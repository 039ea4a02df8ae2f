"""Choices the models and their querysets share (a module of its own: no import cycle)."""

from django.db import models


class PermissionLevel(models.TextChoices):
    NOTHING = "nothing"
    REQUEST = "request"
    APPROVED = "approved"
