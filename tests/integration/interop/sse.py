"""Reading a server-sent event stream in tests: frames until enough CloudEvents came."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Frame:
    id: str
    event: str
    data: dict[str, Any]


async def read_cloudevents(
    url: str, count: int, *, last_event_id: str | None = None, timeout: float = 20.0
) -> list[Frame]:
    """The first ``count`` ``cloudevent`` frames of the stream at ``url``."""
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    frames: list[Frame] = []

    async def read() -> None:
        async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as answer:
            assert answer.status == 200
            assert answer.headers["content-type"].startswith("text/event-stream")
            fields: dict[str, str] = {}
            async for raw in answer.content:
                line = raw.decode().rstrip("\n")
                if line:
                    if not line.startswith(":") and ":" in line:
                        name, _, value = line.partition(":")
                        fields[name] = value.removeprefix(" ")
                    continue
                if fields.get("event") == "cloudevent":
                    frames.append(Frame(fields["id"], "cloudevent", json.loads(fields["data"])))
                    if len(frames) >= count:
                        return
                fields = {}

    await asyncio.wait_for(read(), timeout)
    return frames
