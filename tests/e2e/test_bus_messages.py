"""Copr's build messages reach a real RabbitMQ, and copr-messaging's own classes accept them.

A real worker runs real builds (one that succeeds, one whose %build fails) with
FEDORA_MESSAGING_URL set; the test binds its own queue to an exchange of its own on the
broker, reads what arrived with pika, turns each message back into its class as any
fedora-messaging consumer does (`get_message`, by the schema header) and validates it.
A second test shows a bus that refuses the messages delays them and fails no build.
"""

import os
import uuid

import pika
import pytest
import requests
from copr_messaging import schema
from fedora_messaging.message import get_message

from tests.builders.srpm_factory import make_srpm
from tests.e2e.conftest import finished_build, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BUS_URL = os.environ.get("TEST_FEDORA_MESSAGING_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


class Bus:
    """An exchange and a queue bound to all of its topics, both removed at the end."""

    def __init__(self):
        try:
            self.connection = pika.BlockingConnection(pika.URLParameters(BUS_URL))
        except pika.exceptions.AMQPConnectionError as error:
            pytest.skip(f"no RabbitMQ at {BUS_URL}: {error}")
        self.channel = self.connection.channel()
        self.exchange = f"parity-test-{uuid.uuid4().hex[:12]}"
        self.queue = self.exchange

    def declare(self):
        self.channel.exchange_declare(self.exchange, exchange_type="topic", durable=False)
        self.channel.queue_declare(self.queue, exclusive=True)
        self.channel.queue_bind(self.queue, self.exchange, routing_key="#")

    def messages(self):
        """Everything the queue holds now, as fedora-messaging message objects."""
        found = []
        while True:
            method, properties, body = self.channel.basic_get(self.queue, auto_ack=True)
            if method is None:
                return found
            found.append(get_message(method.routing_key, properties, body))

    def close(self):
        self.channel.queue_delete(self.queue)
        self.channel.exchange_delete(self.exchange)
        self.connection.close()


@pytest.fixture
def bus(e2e_settings):
    bus = Bus()
    e2e_settings.FEDORA_MESSAGING_URL = BUS_URL
    e2e_settings.FEDORA_MESSAGING_EXCHANGE = bus.exchange
    yield bus
    bus.close()


def submit(live_server, token, srpm) -> int:
    with open(srpm, "rb") as handle:
        response = requests.post(
            f"{live_server.url}/api/v1/projects/packager/tools/builds",
            files={"srpm": (srpm.name, handle, "application/x-rpm")},
            data={"chroots": ["fedora-43-x86_64"]},
            auth=(token.login, token.token),
            timeout=60,
        )
    assert response.status_code == 201, response.text
    return response.json()["id"]


def collect(bus, count: int, timeout: float = 120) -> list:
    received = []

    def enough():
        received.extend(bus.messages())
        return len(received) >= count

    wait_for(enough, timeout=timeout, what=f"{count} messages on the bus")
    return received


def by_build_and_chroot(messages) -> dict:
    table = {}
    for message in messages:
        key = (message.body["build"], message.body["chroot"])
        table.setdefault(key, []).append(message)
    return table


def test_builds_that_succeed_and_fail_are_announced_as_copr_announces_them(
    live_server, worker, packager, bus, tmp_path
):
    _, token, _ = packager
    bus.declare()
    good = submit(live_server, token, make_srpm(tmp_path, name="hello", auto_req_prov=False))
    bad_srpm = make_srpm(tmp_path, name="broken", build_script="exit 1", auto_req_prov=False)
    bad = submit(live_server, token, bad_srpm)
    assert finished_build(good).state == "succeeded"
    assert finished_build(bad).state == "failed"

    # Per build: the source task and the fedora-43-x86_64 task, each start twice, end once.
    messages = collect(bus, 12)
    assert len(messages) == 12
    for message in messages:
        message.validate()  # copr-messaging's body schema
        assert message.body["owner"] == "packager" and message.body["copr"] == "tools"
        assert message.body["user"] == "packager"

    table = by_build_and_chroot(messages)
    assert set(table) == {
        (good, "srpm-builds"),
        (good, "fedora-43-x86_64"),
        (bad, "srpm-builds"),
        (bad, "fedora-43-x86_64"),
    }
    for (build_id, chroot), sent in table.items():
        kinds = {type(message) for message in sent}
        assert kinds == {
            schema.BuildChrootStartedV1,
            schema.BuildChrootStartedV1DontUse,
            schema.BuildChrootEndedV1,
        }
        topics = sorted(message.topic for message in sent)
        assert topics == ["copr.build.end", "copr.build.start", "copr.chroot.start"]
        for message in sent:
            if isinstance(message, schema.BuildChrootStartedV1):
                assert message.body["status"] == 3 and message.status == "running"
                assert message.body["what"].startswith("build start: user:packager copr:tools")
        end = next(m for m in sent if isinstance(m, schema.BuildChrootEndedV1))
        assert end.build_id == build_id and end.chroot == chroot
        failed = (build_id, chroot) == (bad, "fedora-43-x86_64")
        assert (end.body["status"], end.status) == ((0, "failed") if failed else (1, "succeeded"))

    good_rpm_end = next(
        m for m in table[(good, "fedora-43-x86_64")] if isinstance(m, schema.BuildChrootEndedV1)
    )
    assert good_rpm_end.package_name == "hello"
    assert good_rpm_end.package_version == "1.0" and good_rpm_end.package_release == "1"
    assert good_rpm_end.summary == (
        f'Copr Message in project "packager/tools": build {good}: '
        'chroot "fedora-43-x86_64" ended as "succeeded".'
    )


def test_a_bus_that_refuses_messages_delays_them_and_fails_no_build(
    live_server, worker, packager, bus, tmp_path
):
    _, token, _ = packager
    # The exchange does not exist yet: the broker refuses every publish.
    build_id = submit(live_server, token, make_srpm(tmp_path, name="hello", auto_req_prov=False))
    assert finished_build(build_id).state == "succeeded"

    bus.declare()  # the operator fixes the bus: the retried messages arrive
    # Each message waits out its retry backoff (doubling from 10 s) before it is sent again.
    messages = collect(bus, 6, timeout=300)
    assert {(m.topic, m.body["chroot"]) for m in messages} == {
        ("copr.build.start", "srpm-builds"),
        ("copr.chroot.start", "srpm-builds"),
        ("copr.build.end", "srpm-builds"),
        ("copr.build.start", "fedora-43-x86_64"),
        ("copr.chroot.start", "fedora-43-x86_64"),
        ("copr.build.end", "fedora-43-x86_64"),
    }
