"""A small Vyper counter, compiled in the test run, for the chain tests (integration and faults)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from eth_abi.abi import decode, encode
from eth_utils.crypto import keccak
from vyper.compiler import compile_code
from vyper.compiler.settings import Settings as VyperSettings

from pervasive.chain import HARDFORK, ContractCall, Log, RpcClient, TransactionManager

COUNTER_SOURCE = """
# pragma version ~=0.4.3

event Bumped:
    sender: indexed(address)
    by: uint256
    total: uint256

total: public(uint256)

@external
def bump(by: uint256):
    assert by > 0, "zero bump"
    assert by != 13
    self.total += by
    log Bumped(sender=msg.sender, by=by, total=self.total)
"""

BUMPED = keccak(text="Bumped(address,uint256,uint256)")


@functools.cache
def counter_bytecode() -> bytes:
    settings = VyperSettings(evm_version=HARDFORK)
    out = compile_code(COUNTER_SOURCE, output_formats=["bytecode"], settings=settings)
    return bytes.fromhex(out["bytecode"].removeprefix("0x"))


@dataclass(frozen=True)
class Counter:
    """The deployed counter: calldata builders and a reader."""

    rpc: RpcClient
    address: str

    def bump(self, by: int = 1, *, gas: int | None = None) -> ContractCall:
        data = keccak(text="bump(uint256)")[:4] + encode(["uint256"], [by])
        return ContractCall(to=self.address, data=data, gas=gas)

    async def total(self) -> int:
        raw = await self.rpc.call(self.address, keccak(text="total()")[:4])
        return int(decode(["uint256"], raw)[0])

    @staticmethod
    def bumped(log: Log) -> tuple[int, int]:
        """(by, total) of a Bumped log."""
        by, total = decode(["uint256", "uint256"], log.data)
        return int(by), int(total)


async def deploy_counter(manager: TransactionManager) -> Counter:
    receipt = await manager.deploy(counter_bytecode())
    assert receipt.contract_address is not None
    return Counter(manager.rpc, receipt.contract_address)
