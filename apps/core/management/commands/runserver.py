"""runserver that also starts the in-process worker when no external broker is configured."""

from django.conf import settings
from django.core.management.commands.runserver import Command as CoreRunserver

from apps.core.embedded import start_embedded_worker, uses_embedded_broker
from coprsite.public_url import public_url_mismatch


# Django's plain runserver, not staticfiles': WhiteNoise serves static files in every mode,
# so what a developer sees with DEBUG on is what `make run` and production serve.
class Command(CoreRunserver):
    help = "Serve the portal; with BROKER_URL unset, also run the build worker in-process."

    def inner_run(self, *args, **options):
        # inner_run runs in the serving process (the autoreloader's child), where the
        # worker threads must live to see the StubBroker's in-memory queues.
        if uses_embedded_broker():
            start_embedded_worker()
            self.stdout.write("In-process worker running (BROKER_URL is unset).")
        problem = public_url_mismatch(settings.PUBLIC_URL, self.addr, self.port)
        if problem:
            self.stderr.write(self.style.WARNING(f"Warning: {problem}"))
        super().inner_run(*args, **options)
