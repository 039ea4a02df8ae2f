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
