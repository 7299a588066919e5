"""``pervasive shadow run`` killed (SIGKILL) twice while a device updates its shadow.

The shadow service is a real process of the ``pervasive`` command; the broker (the
embedded one in the test's process, or mosquitto) and the device live in the test.
The device keeps sending ``update`` requests, each with its own clientToken and at
most ``WINDOW`` waiting for their answer (an AWS client keeps under 10 in flight);
the service is killed in the middle of the stream and started again on the same data
directory, twice, while the device goes on sending. Every request must be answered
(``accepted``, with the answer committed the first time if it comes again), and the
shadow's version must count each update once. An answer is published at least once
(MQTT QoS 1): a kill between the broker taking an answer and the service recording
that is re-sent the same answer, at most one per kill; a device SDK drops it (no
request with that clientToken waits any more).

Needs ``pervasive shadow run`` to connect with ``ClientOptions(manual_ack=True)``
(issue 11, item 7): on a clean session the requests sent while the process is down,
and those it had taken but not answered, are lost (52, 51 and 22 unanswered in three
runs before the fix); the service acknowledges a request once its answer is
committed and answers a redelivered one from the store, never applying it twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from pervasive.config import Settings
from pervasive.messaging import ClientOptions, MqttClient, find_mosquitto
from pervasive.platform import SHADOW_IDENTITY, Platform
from pervasive.shadow import ShadowKey, ShadowStore
from pervasive_child import PervasiveChild

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

PASSWORD = "shadow restart test"
THING = "lock-1"
TOTAL = 120
WINDOW = 8
KILL_AT = (30, 75)
"""Answers the device has received when the service is killed."""


@dataclass
class World(PervasiveChild):
    home: Path
    env: dict[str, str]
    port: int
    device: MqttClient
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    log_name = "shadow.log"

    def arguments(self) -> list[str]:
        return ["shadow", "run", "--port", str(self.port)]

    async def until(self, condition: Callable[[], bool], *, timeout: float) -> None:
        """Wait for ``condition``; on timeout go on (the assertions say what is missing)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not condition() and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.002)

    @property
    def answered(self) -> int:
        return sum(len(got) for token, got in self.answers.items() if token.startswith("u-"))

    async def subscribed(self) -> None:
        """Wait until the service answers (it printed its line before it subscribed)."""
        for attempt in range(100):
            token = f"probe-{attempt}"
            body = json.dumps({"clientToken": token}).encode()
            await self.device.publish(f"$aws/things/{THING}/shadow/get", body)
            await self.until(lambda t=token: t in self.answers, timeout=0.3)
            if token in self.answers:
                return
        pytest.fail(f"the shadow service never answered\n{self.log()[-4000:]}")

    async def listen(self) -> None:
        async for message in self.device.messages():
            if message.topic.rsplit("/", 1)[-1] in ("accepted", "rejected"):
                body = json.loads(message.payload)
                self.answers[body.get("clientToken", "")].append(body)

    async def send_all(self) -> None:
        """Send ``TOTAL`` updates, never more than ``WINDOW`` waiting for an answer."""
        for n in range(TOTAL):
            while n - sum(1 for token in self.answers if token.startswith("u-")) >= WINDOW:
                await asyncio.sleep(0.005)
            body = {"state": {"reported": {"n": n}}, "clientToken": f"u-{n}"}
            await self.device.publish(
                f"$aws/things/{THING}/shadow/update", json.dumps(body).encode()
            )


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    running: list[subprocess.Popen[bytes]] = []
    yield running
    for process in running:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=15)


@pytest.fixture(params=["embedded", pytest.param("mosquitto", marks=pytest.mark.mosquitto)])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    if request.param == "mosquitto" and find_mosquitto() is None:
        pytest.skip("mosquitto is not installed")
    home = tmp_path / "home"
    settings = Settings(home=home, broker=request.param, password=PASSWORD)  # type: ignore[arg-type]
    async with Platform(settings) as platform:
        broker = await platform.broker()
        ca = platform.authority
        ca.client_credentials(SHADOW_IDENTITY, home / "mqtt")  # what `shadow run` uses
        device = ca.write_credentials(ca.issue_device(THING), tmp_path / THING)
        await broker.settle()
        env = {
            **os.environ,
            "PERVASIVE_PASSWORD": PASSWORD,
            "PERVASIVE_BROKER": request.param,
            # the per-thing rate (20/s) is not what this test is about
            "PERVASIVE_SHADOW_REQUESTS_PER_SECOND": "10000",
            "PERVASIVE_SHADOW_BURST": "10000",
        }
        options = ClientOptions(
            broker.host, broker.port, device, reconnect_min=0.02, reconnect_max=0.2
        )
        async with MqttClient(options) as client:
            for outcome in ("accepted", "rejected"):
                await client.subscribe(f"$aws/things/{THING}/shadow/+/{outcome}")
            yield World(home, env, broker.port, client)


async def test_every_request_is_answered_once_across_kills(
    world: World, processes: list[subprocess.Popen[bytes]]
) -> None:
    listener = asyncio.create_task(world.listen())
    sender: asyncio.Task[None] | None = None
    try:
        processes.append(world.start())
        await world.ready(processes[-1], 1)
        await world.subscribed()  # from now on the broker keeps requests for svc:shadow
        sender = asyncio.create_task(world.send_all())
        for starts, kill_at in enumerate(KILL_AT, start=2):
            await world.until(lambda at=kill_at: world.answered >= at, timeout=30)
            processes[-1].send_signal(signal.SIGKILL)
            processes[-1].wait(timeout=10)
            await asyncio.sleep(0.5)  # requests keep coming while nobody serves shadows
            processes.append(world.start())
            await world.ready(processes[-1], starts)
        await world.until(lambda: sender.done() and world.answered >= TOTAL, timeout=30)
        await asyncio.sleep(1.0)  # an extra answer would come now
    finally:
        for task in (listener, sender):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    answers = {token: got for token, got in world.answers.items() if token.startswith("u-")}
    unanswered = [n for n in range(TOTAL) if f"u-{n}" not in answers]
    assert unanswered == [], f"{len(unanswered)} unanswered; {world.log()[-3000:]}"
    differing = {token: got for token, got in answers.items() if len(set(map(str, got))) > 1}
    assert differing == {}, "a request was answered twice, differently"
    assert all("version" in got[0] for got in answers.values()), "all accepted"
    versions = sorted(got[0]["version"] for got in answers.values())
    assert versions == list(range(1, TOTAL + 1))  # each update applied once
    # QoS 1 is at least once: a kill after the broker took an answer but before the
    # service recorded it re-sends that same answer (the SDK drops it: no request waits)
    repeated = sum(len(got) - 1 for got in answers.values())
    assert repeated <= len(KILL_AT)
    processes[-1].send_signal(signal.SIGINT)
    processes[-1].wait(timeout=15)
    store = ShadowStore.open(world.home / "shadow.sqlite")
    try:
        record = store.load(ShadowKey(THING))
        assert record is not None and record.version == TOTAL
    finally:
        store.close()
