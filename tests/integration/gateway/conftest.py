"""A gateway world per backend (``world``), built once per module and shared by its tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from gateway_world import GatewayWorld

from pervasive.chain import open_ledger
from pervasive.config import GatewaySettings, Settings
from pervasive.contracts.deployments import DeploymentBook
from pervasive.contracts.sale_order import SaleOrderFactory
from pervasive.gateway import Gateway, RoleBook, roles_file
from pervasive.pki import CertificateAuthority


@pytest_asyncio.fixture(
    scope="module",
    loop_scope="module",
    params=["embedded", pytest.param("anvil", marks=pytest.mark.anvil)],
)
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, artifacts: Path
) -> AsyncIterator[GatewayWorld]:
    home = tmp_path_factory.mktemp(f"gateway-{request.param}")
    settings = Settings(home=home, backend=request.param)
    ledger = await open_ledger(settings, persist=False)
    ca = CertificateAuthority.open(home / "pki", "correct horse")
    roles = RoleBook.open(roles_file(home))
    try:
        factory = await SaleOrderFactory.open(
            ledger, ledger.dev_signer(1), artifacts=artifacts, book=DeploymentBook(":memory:")
        )
        gateway = await Gateway.start(
            ledger, ca, GatewaySettings(), roles=roles, orders=factory.is_order
        )
        try:
            yield GatewayWorld(home, settings, ledger, ca, roles, factory, gateway, artifacts)
        finally:
            await gateway.close()
    finally:
        ca.close()
        await ledger.close()
