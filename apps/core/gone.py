"""Work on a row that was deleted while it ran ends quietly: one INFO line, no error, no retry."""

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.exceptions import ObjectDoesNotExist
from django.db import IntegrityError

logger = logging.getLogger(__name__)


class Gone(Exception):
    """A service found the row it works for deleted (or being deleted) and stopped."""


# What deleting a row under running work looks like: the row missing on a reload, a row that
# references it refused (foreign key), its files removed from the results tree.
GONE_ERRORS = (Gone, ObjectDoesNotExist, IntegrityError, FileNotFoundError)


@contextmanager
def quiet_when_gone(what: str, exists: Callable[[], bool]) -> Iterator[None]:
    """Run the work for `what`; if it fails because `what` was deleted meanwhile, stop there.

    Only when `exists()` confirms the row is gone: the same errors about a row that is still
    there are a bug or an outage, and raise as before (an actor then fails and may retry).
    A project delete removes its rows first and its files after, so a missing file of a row
    that still exists is not taken for a deletion either.
    """
    try:
        yield
    except GONE_ERRORS as error:
        if not isinstance(error, Gone) and exists():
            raise
        logger.info("%s was deleted while its work ran; the work stops here (%s)", what, error)
