"""Fixtures of the chain integration tests: a funded manager and a deployed counter."""

from __future__ import annotations

import pytest
from chain_contract import Counter, deploy_counter

from pervasive.chain import Ledger, TransactionManager


@pytest.fixture
def manager(ledger: Ledger) -> TransactionManager:
    """The transaction manager of dev account 0."""
    return ledger.transactor(ledger.dev_signer(0))


@pytest.fixture
async def counter(manager: TransactionManager) -> Counter:
    """A freshly deployed counter."""
    return await deploy_counter(manager)
