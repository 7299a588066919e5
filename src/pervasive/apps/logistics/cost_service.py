"""The local ``ShipmentCost?device=<category>`` service the Shipping contract asks (paper 001).

Section 4's example: "the Shipping contract requires to communicate with a
device-specific locally-deployed service that calculates the shipment cost of a
specific IoT device category", queried as
``oraclize_query("URL", "http://127.0.0.1/ShipmentCost?device=VerticalPump")``. This is
that service: ``GET /ShipmentCost?device=VerticalPump`` answers
``{"device": "VerticalPump", "cost": <wei>}`` from a price table, on
:class:`~pervasive.http.HttpServer`. An unknown category or a missing parameter is
refused with a JSON error (404/400) and counted in :attr:`CostService.refusals`; every
answer is counted in :attr:`CostService.answered` (each oracle node fetches it once).

Example::

    service = await CostService().start()
    print(service.url + "/ShipmentCost?device=VerticalPump")   # {"device": ..., "cost": ...}
    await service.close()
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from types import MappingProxyType, TracebackType
from typing import Self

from pervasive.errors import InvalidInput
from pervasive.http import HttpServer, Request, Response, error_response

__all__ = ["COST_PATH", "PRICES", "CostService"]

COST_PATH = "/ShipmentCost"
"""The service's one route, named as in the paper's query."""

PRICES: Mapping[str, int] = MappingProxyType(
    {
        "VerticalPump": 2_500_000_000_000_000,  # 0.0025 ETH to ship one vertical pump
        "HorizontalPump": 1_800_000_000_000_000,
        "Compressor": 4_200_000_000_000_000,
    }
)
"""Shipping cost in wei per device category (the demo's price table)."""


class CostService:
    """``GET /ShipmentCost?device=<category>`` -> ``{"device", "cost"}`` from ``prices``."""

    def __init__(self, prices: Mapping[str, int] = PRICES) -> None:
        self.prices = dict(prices)
        self.refusals: Counter[str] = Counter()
        """Refused requests by reason: ``no_device``, ``unknown_device`` (and the server's)."""
        self.answered: Counter[str] = Counter()
        """Answers given, by device category."""
        self._server = HttpServer({("GET", COST_PATH): self._cost}, rejections=self.refusals)
        self._host = "127.0.0.1"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` once started (the Shipping contract's cost service)."""
        if not self._server.port:
            raise InvalidInput("the cost service is not started: await service.start() first")
        return f"http://{self._host}:{self._server.port}"

    def query_url(self, device: str) -> str:
        """The URL the oracle fetches for ``device``.

        Example: ``service.query_url("VerticalPump")``.
        """
        return f"{self.url}{COST_PATH}?device={device}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> Self:
        """Listen on ``host:port`` (0: a free port)."""
        self._host = host
        await self._server.start(host, port)
        return self

    async def close(self) -> None:
        """Stop listening."""
        await self._server.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def _cost(self, request: Request) -> Response:
        raw = request.params().get(b"device", b"")
        device = raw.decode("utf-8", "replace")
        if not device:
            return error_response(
                self.refusals, "no_device", "name a device category: ?device=VerticalPump"
            )
        cost = self.prices.get(device)
        if cost is None:
            known = ", ".join(sorted(self.prices))
            message = f"no price for device category {device!r}; known: {known}"
            return error_response(self.refusals, "unknown_device", message, 404)
        self.answered[device] += 1
        return Response(200, json.dumps({"device": device, "cost": cost}).encode())
