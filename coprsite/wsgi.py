"""WSGI entry point (gunicorn coprsite.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coprsite.settings")
application = get_wsgi_application()

from apps.core.slowbody import BodyDeadline  # noqa: E402 (needs the settings above)

application = BodyDeadline(application)
