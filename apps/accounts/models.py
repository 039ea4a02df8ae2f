"""Users, @groups mapped from external (OIDC/FAS) groups, OIDC identities and API tokens."""

from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils import timezone

from apps.core.names import validate_owner_name

NAME_VALIDATOR = validate_owner_name


class User(AbstractUser):
    """A packager or operator. `is_staff` users are Copr's site admins."""

    proven = models.BooleanField(
        default=False, help_text="May raise memory and timeout limits of their builds."
    )

    class Meta:
        db_table = "accounts_user"

    @property
    def name(self) -> str:
        return self.username


class Group(models.Model):
    """An owner group, shown as `@name`; membership comes from the login's `groups` claim."""

    name = models.CharField(max_length=100, unique=True, validators=[NAME_VALIDATOR])
    external_name = models.CharField(
        max_length=100, unique=True, help_text="The group's name at the identity provider."
    )
    description = models.TextField(blank=True)
    members = models.ManyToManyField(User, related_name="owner_groups", blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.at_name

    @property
    def at_name(self) -> str:
        return f"@{self.name}"


class ApiToken(models.Model):
    """A Copr-style `login` + `token` pair; only a SHA-256 of the token is stored."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="api_token")
    login = models.CharField(max_length=40, unique=True)
    token_hash = models.CharField(max_length=64)
    created_on = models.DateTimeField(default=timezone.now)
    expires_on = models.DateField()

    def __str__(self) -> str:
        return f"{self.user} ({self.login})"

    @property
    def is_expired(self) -> bool:
        return self.expires_on < timezone.now().date()


class OidcIdentity(models.Model):
    """Which account an OpenID Connect identity (issuer + `sub`) logs into.

    Logins match on this pair, never on the username claim, so a name chosen at the identity
    provider cannot take over an existing account. The operator links an existing local
    account to an identity by adding a row in the console.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="oidc_identities")
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255, help_text="The provider's `sub` claim.")
    created_on = models.DateTimeField(default=timezone.now)
    last_login = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["issuer", "subject"], name="unique_oidc_identity")
        ]
        verbose_name = "OIDC identity"
        verbose_name_plural = "OIDC identities"

    def __str__(self) -> str:
        return f"{self.user} ← {self.issuer} {self.subject}"


class UploadSlot(models.Model):
    """One upload of a user's in flight, counted across every web process.

    A slot is a lease: a process killed mid-upload cannot give it back, so it lapses at
    `expires_on` (past the longest a body may take, REQUEST_BODY_TIMEOUT).
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="+")
    expires_on = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.user} until {self.expires_on:%H:%M:%S}"
