"""Deploying the committee's contracts on B_u after its key generation, and checking them.

Paper 003, section V-A step 3: once the group key PK exists, "SP generates a
corresponding contract C_sp on the blockchain". The convener (member 1) deploys, in
order, C_sp (:mod:`pervasive.contracts.notary`: PK, t, the members, the deposit
period, T and the DKG transcript's CID), C_o (the members and t) and C_u (C_o and the
deposit coefficient). Every other member trusts none of it until
:func:`check_committee_contracts` has read back, from its own node, that C_sp holds
*its* group key and the agreed terms, C_o the members and t, and C_u that C_o.

Example::

    contracts = await deploy_committee_contracts(ledger, signer, spec, result.group_key, cid)
    await check_committee_contracts(ledger, spec, contracts, result.group_key)
"""

from __future__ import annotations

from pathlib import Path

from pervasive.chain import Ledger, Signer
from pervasive.contracts.deposit_oracle import DepositOracle
from pervasive.contracts.notary import Notary, NotaryTerms, eip2537_group_key
from pervasive.contracts.user_contract import UserContract
from pervasive.crosschain.committee_spec import CommitteeContracts, CommitteeSpec
from pervasive.errors import InvalidInput

__all__ = ["check_committee_contracts", "deploy_committee_contracts"]


async def deploy_committee_contracts(
    ledger: Ledger,
    signer: Signer,
    spec: CommitteeSpec,
    group_key: bytes,
    transcript: str,
    *,
    artifacts: Path | None = None,
) -> CommitteeContracts:
    """Deploy C_sp, C_o and C_u for ``spec`` with the committee's ``group_key``."""
    start = await ledger.block_number()
    terms = NotaryTerms(
        group_key=group_key,
        threshold=spec.threshold,
        members=spec.addresses,
        period_end=spec.period_end,
        publish_window=spec.publish_window,
        transcript=transcript,
    )
    notary = await Notary.deploy(ledger, signer, terms, artifacts=artifacts)
    oracle = await DepositOracle.deploy(
        ledger, signer, spec.addresses, spec.threshold, notary.address, artifacts=artifacts
    )
    user = await UserContract.deploy(
        ledger, signer, oracle.address, spec.coef_percent, artifacts=artifacts
    )
    return CommitteeContracts(notary.address, oracle.address, user.address, start)


async def check_committee_contracts(
    ledger: Ledger, spec: CommitteeSpec, contracts: CommitteeContracts, group_key: bytes
) -> None:
    """Raise :class:`InvalidInput` unless the deployed contracts are the committee's own."""
    notary = Notary.at(ledger, contracts.notary)
    if await ledger.rpc.code(contracts.notary) == b"":
        raise InvalidInput(f"no contract at the notary address {contracts.notary}")
    if await notary.group_key() != eip2537_group_key(group_key):
        raise InvalidInput("the notary contract holds another group key than this committee's")
    if await notary.threshold() != spec.threshold:
        raise InvalidInput("the notary contract has another threshold than the committee file")
    if await notary.publish_window() != spec.publish_window:
        raise InvalidInput("the notary contract has another publish window T")
    oracle = DepositOracle.at(ledger, contracts.oracle)
    members = {m.lower() for m in await oracle.members()}
    if members != {a.lower() for a in spec.addresses} or await oracle.threshold() != spec.threshold:
        raise InvalidInput("the deposit oracle lists other members or another threshold")
    user = UserContract.at(ledger, contracts.user_contract)
    if (await user.oracle()).lower() != contracts.oracle.lower():
        raise InvalidInput("the user contract asks another oracle than the committee's")
