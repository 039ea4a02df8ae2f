"""BROKER_URL: which Dramatiq broker it names, whether it is well-formed, and whether it answers."""

import socket
from urllib.parse import parse_qsl, urlsplit

EXAMPLE = "BROKER_URL=redis://127.0.0.1:6379/0 (or amqp://user:password@host:5672/%2F)"
SCHEMES = {
    "redis": "dramatiq.brokers.redis.RedisBroker",
    "rediss": "dramatiq.brokers.redis.RedisBroker",
    "amqp": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
    "amqps": "dramatiq.brokers.rabbitmq.RabbitmqBroker",
}
STUB_BROKER = "dramatiq.brokers.stub.StubBroker"
# Seconds a starting web or worker process waits for the broker to answer before refusing.
CONNECT_TIMEOUT_SECONDS = 5


class BrokerUrlError(ValueError):
    """A BROKER_URL that cannot be what the operator meant; the message says why."""


def missing_broker_message(process: str) -> str:
    return (
        f"{process} refuses to start: BROKER_URL is not set. Set {EXAMPLE}: the web and "
        "worker processes must share a broker, else messages go to an in-memory queue that no "
        "worker reads. Only the one-process embedded setup (`make run`, `manage.py runserver`) "
        "runs without one. In an env file that a shell sources, quote the URL: an unquoted '&' "
        "ends the assignment there."
    )


def broker_backend(url: str) -> str:
    """The Dramatiq broker class for BROKER_URL ('' means the embedded StubBroker).

    Refuses, with the reason, a URL that would otherwise fail later or silently mean
    something else: an unknown scheme, no host, a port or Redis database that is not a
    number, a query cut short (`?a=1&` or a bare `?name`), or options the client refuses.
    """
    if not url:
        return STUB_BROKER
    shown = redacted(url)
    try:
        parts = urlsplit(url)
        port = parts.port  # parsed lazily: a port that is not a number raises here
    except ValueError as error:
        raise BrokerUrlError(
            f"BROKER_URL {shown} cannot be parsed ({error}); e.g. {EXAMPLE}"
        ) from None
    if parts.scheme not in SCHEMES:
        raise BrokerUrlError(
            f"BROKER_URL must start with redis://, rediss://, amqp:// or amqps://, got {shown}; "
            f"e.g. {EXAMPLE}"
        )
    if not parts.hostname:
        raise BrokerUrlError(f"BROKER_URL {shown} names no host; e.g. {EXAMPLE}")
    if port == 0:
        raise BrokerUrlError(f"BROKER_URL {shown} has port 0")
    if url.endswith("?"):
        raise BrokerUrlError(f"BROKER_URL {shown} ends in '?': its options were cut off")
    _check_query(parts.query, shown)
    if parts.scheme.startswith("redis"):
        _check_redis(url, parts.path, shown)
    else:
        _check_amqp(url, shown)
    return SCHEMES[parts.scheme]


def _check_query(query: str, shown: str) -> None:
    if not query:
        return
    for field in query.split("&"):
        name, equals, value = field.partition("=")
        if not name or not equals or not value:
            raise BrokerUrlError(
                f"BROKER_URL {shown} has an option without a value ({field!r}): the URL looks "
                "cut off; in a shell-sourced env file, quote a URL that holds '&'"
            )
    parse_qsl(query, strict_parsing=True)


def _check_redis(url: str, path: str, shown: str) -> None:
    import redis

    database = path.strip("/")
    if database and not database.isdigit():
        raise BrokerUrlError(f"BROKER_URL {shown}: the Redis database {database!r} is not a number")
    try:
        # Builds a connection object from the URL's options without connecting: an option
        # the client does not know fails here rather than at the first message.
        redis.ConnectionPool.from_url(url).make_connection()
    except (ValueError, TypeError) as error:
        raise BrokerUrlError(f"BROKER_URL {shown}: {error}") from None


def _check_amqp(url: str, shown: str) -> None:
    import pika

    try:
        pika.URLParameters(url)
    except ValueError as error:
        raise BrokerUrlError(f"BROKER_URL {shown}: {error}") from None


def redacted(url: str) -> str:
    """The URL with its password replaced, for messages and logs."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return repr(url.split("@")[-1])
    if not password:
        return repr(url)
    return repr(url.replace(f":{password}@", ":***@", 1))


def broker_unreachable(url: str, *, timeout: float = CONNECT_TIMEOUT_SECONDS) -> str | None:
    """Why the broker at `url` does not answer within `timeout` seconds, or None if it does."""
    shown = redacted(url)
    try:
        if urlsplit(url).scheme.startswith("redis"):
            _ping_redis(url, timeout)
        else:
            _open_amqp(url, timeout)
    except Exception as error:  # noqa: BLE001 (any failure to talk to the broker is the answer)
        reason = str(error) or repr(error)
        return f"the broker at BROKER_URL {shown} does not answer within {timeout:g} s: {reason}"
    return None


def _ping_redis(url: str, timeout: float) -> None:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
    try:
        client.ping()
    finally:
        client.close()


def _open_amqp(url: str, timeout: float) -> None:
    import pika

    parameters = pika.URLParameters(url)
    parameters.connection_attempts = 1
    parameters.socket_timeout = timeout
    parameters.blocked_connection_timeout = timeout
    parameters.stack_timeout = timeout
    try:
        pika.BlockingConnection(parameters).close()
    except socket.gaierror as error:
        raise ConnectionError(f"unknown host ({error})") from error


def startup_problem(url: str, process: str) -> str | None:
    """Why `process` (gunicorn, rundramatiq) must not start on BROKER_URL `url`, or None."""
    if not url:
        return missing_broker_message(process)
    try:
        broker_backend(url)
    except BrokerUrlError as error:
        return f"{process} refuses to start: {error}"
    problem = broker_unreachable(url)
    if problem:
        return f"{process} refuses to start: {problem}"
    return None
