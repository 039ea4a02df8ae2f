"""django_dramatiq's rundramatiq, kept running: a dead worker is restarted, not left dead."""

import argparse
import os
import sys

from django.conf import settings
from django.core.management.base import CommandError
from django_dramatiq.management.commands import rundramatiq

from apps.core.supervisor import Supervisor
from coprsite.broker import startup_problem


class Command(rundramatiq.Command):
    help = (
        "Runs Dramatiq workers under a supervisor that restarts them (with backoff) when a "
        "worker process dies; SIGTERM/SIGINT stop them, SIGHUP reloads them."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument(
            "--no-supervise",
            action="store_true",
            help="Run dramatiq directly (exit when a worker process dies), e.g. under a "
            "process manager that restarts it.",
        )
        # The supervisor's own children: it checked the broker once at start. A worker it
        # restarts during a broker outage starts and waits for the broker, as running
        # workers do, instead of exiting until the outage ends.
        parser.add_argument("--broker-checked", action="store_true", help=argparse.SUPPRESS)

    def handle(self, *args, no_supervise: bool = False, broker_checked: bool = False, **options):
        # Separate worker processes on the in-memory StubBroker would each read a queue of
        # their own that nothing sends to; a broker that does not answer is said now, not
        # found out through builds that never start.
        if not broker_checked:
            problem = startup_problem(settings.BROKER_URL, "manage.py rundramatiq")
            if problem:
                raise CommandError(problem)
        # Called from code (call_command), sys.argv is not this command line to run again.
        if no_supervise or sys.argv[1:2] != ["rundramatiq"]:
            return super().handle(*args, **options)
        # The same command line again, unsupervised: it execs dramatiq in the child.
        child = [
            sys.executable, os.path.abspath(sys.argv[0]), *sys.argv[1:],
            "--no-supervise", "--broker-checked",
        ]  # fmt: skip
        sys.exit(Supervisor(child).run())
