"""A service's feed in its own process, for the shared-log test.

``python feed_child.py URL ADDRESS HOME SPEC NAME PORT CA CERT KEY``: an
``InteropFeed(ledger, HOME, name=NAME)`` following the quotes contract at ADDRESS into
``<HOME>/interop/events.sqlite`` and publishing its own events on the broker at
127.0.0.1:PORT with the given client credentials, until killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from pervasive.chain import open_ledger
from pervasive.config import Settings
from pervasive.interop import InteropFeed
from pervasive.messaging import ClientCredentials, ClientOptions, MqttClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quotes import quotes_mappings


async def main(
    url: str, address: str, home: str, spec: str, name: str, port: str, *files: str
) -> None:
    settings = Settings(home=Path(home) / name, backend="rpc", rpc_url=url)
    ledger = await open_ledger(settings)
    feed = InteropFeed(ledger, Path(home), name=name, poll_interval=0.02)
    feed.follow(address, quotes_mappings(Path(spec)), start_block=0)
    ca, cert, key = (Path(f) for f in files)
    credentials = ClientCredentials(ca_file=ca, cert_file=cert, key_file=key)
    try:
        async with MqttClient(ClientOptions("127.0.0.1", int(port), credentials)) as client:
            await feed.run(client)
    finally:
        feed.close()
        await ledger.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:]))
