"""A real OpenID Connect provider for tests: django-oauth-toolkit in its own process."""
