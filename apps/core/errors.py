"""Errors services raise for the caller's mistakes; API layers turn them into 4xx answers."""


class ServiceError(Exception):
    """Bad input: the message tells the person what to change."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class PermissionDenied(ServiceError):
    status = 403


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    status = 409


class InvalidForm(ServiceError):
    """Bad values in named fields, every one at once, in Copr's shape.

    The message is one `field: message` line per field (Copr's InvalidForm); python-copr
    turns a message of several lines into `- field: message` lines, so copr-cli prints
    `Error:` on its own line followed by the fields.
    """

    def __init__(self, errors: dict[str, list[str]]) -> None:
        self.errors = {field: list(messages) for field, messages in errors.items()}
        super().__init__(form_error_text(self.errors))


def form_error_text(errors: dict[str, list[str]]) -> str:
    return "\n".join(f"{field}: {' '.join(messages)}" for field, messages in errors.items())


class FieldErrors:
    """Collects field errors while a form is read, then raises them together."""

    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def __bool__(self) -> bool:
        return bool(self.errors)

    def add(self, field: str, *messages: str) -> None:
        if messages:
            known = self.errors.setdefault(field, [])
            known += [message for message in messages if message not in known]

    def merge(self, error: ServiceError, field: str) -> None:
        """An InvalidForm keeps its fields; any other service error is filed under `field`.

        A field that already has errors keeps them alone: the first check that found it
        bad (reading the request) says more than later ones (the model's "cannot be null").
        """
        found = error.errors if isinstance(error, InvalidForm) else {field: [error.message]}
        for name, messages in found.items():
            if name not in self.errors:
                self.add(name, *messages)

    def check(self, field: str, function, *args, **kwargs):
        """Call `function`; a ServiceError it raises is recorded and None returned."""
        try:
            return function(*args, **kwargs)
        except ServiceError as error:
            if error.status != 400:
                raise
            self.merge(error, field)
            return None

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidForm(self.errors)
