"""Register (or update) a confidential OIDC client with one redirect URI."""

from django.core.management.base import BaseCommand
from oauth2_provider.models import get_application_model


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("client_id")
        parser.add_argument("--secret", required=True)
        parser.add_argument("--redirect-uri", required=True)

    def handle(self, *args, client_id, secret, redirect_uri, **options):
        application_model = get_application_model()
        application, _ = application_model.objects.get_or_create(client_id=client_id)
        application.name = client_id
        application.client_secret = secret  # hashed on save
        application.client_type = application_model.CLIENT_CONFIDENTIAL
        application.authorization_grant_type = application_model.GRANT_AUTHORIZATION_CODE
        application.redirect_uris = redirect_uri
        application.algorithm = application_model.RS256_ALGORITHM
        # No consent screen: the user trusts this client, as with a site's own provider.
        application.skip_authorization = True
        application.save()
