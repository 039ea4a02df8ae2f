"""WSGI entry point (gunicorn coprsite.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coprsite.settings")
application = get_wsgi_application()

# After setup: Django's settings and apps are loaded.
from apps.core.embedded import refuse_stub_broker_without_worker  # noqa: E402
from apps.core.slowbody import BodyDeadline  # noqa: E402

refuse_stub_broker_without_worker("The web process (coprsite.wsgi)")
application = BodyDeadline(application)
