"""ASGI entry point."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coprsite.settings")
application = get_asgi_application()

# After setup: Django's settings and apps are loaded.
from apps.core.embedded import refuse_stub_broker_without_worker  # noqa: E402

refuse_stub_broker_without_worker("The web process (coprsite.asgi)")
