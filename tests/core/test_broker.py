"""gunicorn and rundramatiq refuse to start without a working broker, and say why."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from coprsite.broker import BrokerUrlError, broker_backend
from tests.e2e.processes import RedisServer, free_port, stop_process_group

ROOT = Path(__file__).resolve().parents[2]
# Python and Django start, settings load, a refused connection or the 5 s timeout: well
# under this, even on a busy machine.
REFUSAL_SECONDS = 45


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def process_env(tmp_path: Path, broker_url: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("BROKER_URL", "DATABASE_URL")}
    env.update(VAR_DIR=str(tmp_path), LOG_LEVEL="WARNING", RECONCILE_SECONDS="3600")
    if broker_url is not None:
        env["BROKER_URL"] = broker_url
    return env


def gunicorn(port: int, *config: str) -> list[str]:
    return [sys.executable, "-m", "gunicorn", *config, "--bind", f"127.0.0.1:{port}",
            "--workers", "1", "--threads", "2", "coprsite.wsgi"]  # fmt: skip


RUNDRAMATIQ = [sys.executable, "manage.py", "rundramatiq", "--processes", "1", "--threads", "1"]


def refusal(command: list[str], env: dict, *, shell_prefix: str = "") -> str:
    """Run `command`; it must exit non-zero within REFUSAL_SECONDS. Returns its output."""
    if shell_prefix:
        command = ["bash", "-c", f'{shell_prefix} exec "$@"', "bash", *command]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=REFUSAL_SECONDS,
            start_new_session=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired as running:
        pytest.fail(f"{command[:4]} still running after {REFUSAL_SECONDS} s: {running.stderr}")
    assert done.returncode != 0, done.stdout + done.stderr
    assert time.monotonic() - started < REFUSAL_SECONDS
    return done.stdout + done.stderr


SERVERS = {
    "gunicorn": lambda: gunicorn(free_port(), "-c", "gunicorn.conf.py"),
    "rundramatiq": lambda: RUNDRAMATIQ,
}


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.e2e
def test_no_broker_url_is_refused_with_an_example(server, tmp_path):
    output = refusal(SERVERS[server](), process_env(tmp_path, None))
    assert "refuses to start: BROKER_URL is not set" in output
    assert "BROKER_URL=redis://127.0.0.1:6379/0" in output


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.e2e
def test_an_unquoted_ampersand_in_a_sourced_env_file_is_refused(server, tmp_path, redis_server):
    # A shell that sources the file sends the assignment to the background at the '&', so
    # BROKER_URL stays unset: the server must refuse to start, not use the in-memory broker.
    env_file = tmp_path / "env"
    env_file.write_text(f"BROKER_URL={redis_server.url}?socket_timeout=5&health_check_interval=9\n")
    output = refusal(
        SERVERS[server](), process_env(tmp_path, None), shell_prefix=f"set -a; . {env_file};"
    )
    assert "BROKER_URL is not set" in output
    assert "quote the URL" in output


@pytest.mark.e2e
@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("kafka://127.0.0.1:9092", "must start with redis://, rediss://, amqp:// or amqps://"),
        ("redis://127.0.0.1:63x79/0", "cannot be parsed"),
        ("redis://127.0.0.1:6379/0?socket_timeout=5&", "option without a value"),
        ("redis://127.0.0.1:6379/0?socket_timeout", "option without a value"),
        ("redis://127.0.0.1:6379/zero", "the Redis database 'zero' is not a number"),
        ("amqp://guest:secret@127.0.0.1:5672/%2F?heartbeat=thirty", "Invalid heartbeat"),
    ],
)
def test_a_malformed_broker_url_is_refused_with_the_reason(server, url, reason, tmp_path):
    output = refusal(SERVERS[server](), process_env(tmp_path, url))
    assert reason in output
    assert "secret" not in output  # the password is never printed


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.e2e
def test_a_broker_that_does_not_answer_is_refused(server, tmp_path):
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    output = refusal(SERVERS[server](), process_env(tmp_path, url))
    assert f"the broker at BROKER_URL '{url}' does not answer" in output


@pytest.mark.e2e
@pytest.mark.parametrize("server", SERVERS)
def test_a_broker_that_accepts_but_never_answers_is_refused_after_the_timeout(server, tmp_path):
    # The kernel completes the connection from the listen backlog; nothing ever replies.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        output = refusal(SERVERS[server](), process_env(tmp_path, url))
    assert f"the broker at BROKER_URL '{url}' does not answer within 5 s: Timeout" in output


@pytest.mark.e2e
def test_the_wsgi_application_refuses_the_stub_broker_under_any_server(tmp_path):
    # Without gunicorn.conf.py (or under another WSGI server) the application itself refuses.
    empty_config = tmp_path / "gunicorn.conf.py"
    empty_config.write_text("")
    command = gunicorn(free_port(), "-c", str(empty_config))
    output = refusal(command, process_env(tmp_path, None))
    assert "The web process (coprsite.wsgi) refuses to start: BROKER_URL is not set" in output


@pytest.mark.e2e
def test_with_a_redis_broker_both_start(tmp_path, redis_server):
    env = process_env(tmp_path, redis_server.url)
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env,
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    port = free_port()
    web = subprocess.Popen(gunicorn(port, "-c", "gunicorn.conf.py"), cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           start_new_session=True)  # fmt: skip
    workers = subprocess.Popen(RUNDRAMATIQ, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            assert web.poll() is None, web.stdout.read()
            try:
                if requests.get(f"http://127.0.0.1:{port}/api_3/", timeout=10).ok:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not answer"
            time.sleep(0.3)
        # The workers hold their Redis connections: they are still up past the start check.
        time.sleep(REFUSAL_SECONDS / 9)
        assert workers.poll() is None, workers.stdout.read()
    finally:
        stop_process_group(web)
        stop_process_group(workers)


@pytest.mark.parametrize(
    ("url", "broker"),
    [
        ("", "dramatiq.brokers.stub.StubBroker"),
        ("redis://127.0.0.1:6379/3", "dramatiq.brokers.redis.RedisBroker"),
        (
            "rediss://:pw@redis.example:6380/0?ssl_cert_reqs=none",
            "dramatiq.brokers.redis.RedisBroker",
        ),
        ("amqp://u:p@mq.example:5672/%2F?heartbeat=30", "dramatiq.brokers.rabbitmq.RabbitmqBroker"),
    ],
)
def test_well_formed_urls_name_their_broker(url, broker):
    assert broker_backend(url) == broker


def test_the_message_hides_the_password():
    with pytest.raises(BrokerUrlError) as refused:
        broker_backend("redis://:hunter2@127.0.0.1:6379/0?unknown_option=1")
    assert "hunter2" not in str(refused.value)
    assert "unexpected keyword argument 'unknown_option'" in str(refused.value)
