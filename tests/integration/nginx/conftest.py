"""Fixtures of the nginx tests: Debian's nginx on ``deploy/nginx/`` in front of anvil.

Each test module shares one world (``xdist_group`` per module, ``loop_scope="module"``):

- ``node``: a throw-away anvil chain (``Settings(backend="anvil")``), closed after the module;
- ``upstream``: its JSON-RPC address as nginx's ``proxy_pass`` wants it (``127.0.0.1:<port>``);
- ``authority``: the platform CA in a temporary folder;
- ``door``: the credentials of device ``door-1`` (``cert.pem``, ``key.pem``, ``ca.pem``);
- ``stranger``: a device certificate from another CA.

Skipped, with the reason, only when ``/usr/sbin/nginx`` is missing (CI installs it).

Example::

    def test_up(node, upstream): assert upstream.startswith("127.0.0.1:")
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from nginx_proxy import NGINX, NO_NGINX
from pervasive.chain import Ledger, open_ledger
from pervasive.config import Settings
from pervasive.messaging import ClientCredentials
from pervasive.pki import CertificateAuthority


@pytest.fixture(scope="module", autouse=True)
def _needs_nginx() -> None:
    if not NGINX.exists():
        pytest.skip(NO_NGINX)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ledger]:
    home = tmp_path_factory.mktemp("nginx-node")
    ledger = await open_ledger(Settings(home=home, backend="anvil"), persist=False)
    try:
        yield ledger
    finally:
        await ledger.close()


@pytest.fixture(scope="module")
def upstream(node: Ledger) -> str:
    assert node.url is not None and node.url.startswith("http://")
    return node.url.removeprefix("http://").rstrip("/")


@pytest.fixture(scope="module")
def authority(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertificateAuthority]:
    ca = CertificateAuthority.open(tmp_path_factory.mktemp("nginx-pki"), "pw")
    yield ca
    ca.close()


@pytest.fixture(scope="module")
def door(
    authority: CertificateAuthority, tmp_path_factory: pytest.TempPathFactory
) -> ClientCredentials:
    return authority.write_credentials(
        authority.issue_device("door-1"), tmp_path_factory.mktemp("door-1")
    )


@pytest.fixture(scope="module")
def stranger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClientCredentials]:
    other = CertificateAuthority.open(tmp_path_factory.mktemp("other-pki"), "pw")
    creds = other.write_credentials(
        other.issue_device("door-1"), tmp_path_factory.mktemp("stranger")
    )
    yield creds
    other.close()
