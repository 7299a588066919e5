"""The gateway's roles: which methods pass, and for the warehouse which parameters."""

from __future__ import annotations

import json

import pytest
from coincurve import PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from pervasive.chain.signing import UnsignedTransaction, sign_transaction
from pervasive.contracts.sale_order import SaleOrder
from pervasive.crypto import keccak256
from pervasive.errors import InvalidInput
from pervasive.gateway.jsonrpc import NOT_ALLOWED, Call
from pervasive.gateway.policy import Permissions, Policy, Role, SaleOrderRules, method_key

CHAIN = 31337
ORDER = "0x" + "5f" * 20
BUYER = "0x" + "b0" * 20
VERIFY = keccak256(b"verifyOwnership(address)")[:4]
RULES = SaleOrderRules(SaleOrder.VIEW_SELECTORS, SaleOrder.RELEASE_SELECTOR, chain_id=CHAIN)
POLICY = Policy.default(RULES)
KEY = PrivateKey(bytes([7]) * 32)


def call(method: str, *params: object) -> Call:
    return Call(method, list(params), 1, notification=False)


def arg(address: str) -> str:
    return "00" * 12 + address[2:].lower()


def raw_release(
    *,
    to: str = ORDER,
    data: bytes = SaleOrder.RELEASE_SELECTOR + bytes.fromhex(arg(BUYER)),
    value: int = 0,
    chain_id: int = CHAIN,
) -> str:
    unsigned = UnsignedTransaction(
        chain_id, 0, 10**9, 2 * 10**9, 90_000, bytes.fromhex(to[2:]), value, data
    )
    return "0x" + sign_transaction(unsigned, KEY).raw.hex()


def verify_call(to: str = ORDER, selector: bytes = VERIFY, **extra: object) -> dict[str, object]:
    return {"to": to, "data": "0x" + selector.hex() + arg(BUYER), **extra}


WAREHOUSE_ALLOWED = [
    call("eth_chainId"),
    call("eth_blockNumber"),
    call("eth_gasPrice"),
    call("eth_maxPriorityFeePerGas"),
    call("eth_getBlockByNumber", "latest", False),
    call("eth_getTransactionCount", BUYER, "pending"),
    call("eth_getTransactionReceipt", "0x" + "ab" * 32),
    call("eth_getTransactionByHash", "0x" + "ab" * 32),
    call("eth_feeHistory", "0x5", "latest", [10]),
]


@pytest.mark.parametrize("allowed", WAREHOUSE_ALLOWED, ids=lambda c: c.method)
def test_the_warehouse_reads_what_sending_a_release_needs(allowed: Call) -> None:
    verdict = POLICY.judge(Role.WAREHOUSE, allowed)
    assert verdict.rejection is None and verdict.orders == ()


def test_the_warehouse_calls_a_view_of_an_order_which_must_be_checked() -> None:
    verdict = POLICY.judge(Role.WAREHOUSE, call("eth_call", verify_call(), "latest"))
    assert verdict.rejection is None
    assert verdict.orders == (ORDER,)
    input_field = {"to": ORDER.upper().replace("0X", "0x"), "input": verify_call()["data"]}
    assert POLICY.judge(Role.WAREHOUSE, call("eth_call", input_field)).orders == (ORDER,)


def test_the_warehouse_estimates_and_sends_release_to_an_order() -> None:
    release = verify_call(selector=SaleOrder.RELEASE_SELECTOR, value="0x0", **{"from": BUYER})
    assert POLICY.judge(Role.WAREHOUSE, call("eth_estimateGas", release)).orders == (ORDER,)
    sent = POLICY.judge(Role.WAREHOUSE, call("eth_sendRawTransaction", raw_release()))
    assert sent.rejection is None and sent.orders == (ORDER,)


REFUSED_PARAMS = [
    call("eth_call", verify_call(selector=bytes.fromhex("a9059cbb")), "latest"),  # transfer
    call("eth_call", verify_call(), "latest", {ORDER: {"code": "0x00"}}),  # state override
    call("eth_call", verify_call(value="0x1")),
    call("eth_call", {"to": ORDER}),
    call("eth_call", {"data": verify_call()["data"]}),
    call("eth_call", verify_call(to="0x1234")),
    call("eth_call", {**verify_call(), "input": "0x" + SaleOrder.RELEASE_SELECTOR.hex()}),
    call("eth_call", "not a transaction"),
    call("eth_call"),
    call("eth_sendRawTransaction", raw_release(data=VERIFY + bytes.fromhex(arg(BUYER)))),
    call("eth_sendRawTransaction", raw_release(value=1)),
    call("eth_sendRawTransaction", raw_release(chain_id=1)),
    call("eth_sendRawTransaction", raw_release(data=SaleOrder.RELEASE_SELECTOR)),
    call("eth_sendRawTransaction", "0x02c0ffee"),
    call("eth_sendRawTransaction", "release please"),
    call("eth_getBlockByNumber", "latest", True),
    call("eth_chainId", "extra"),
    call("eth_getTransactionReceipt", "0x12"),
]


@pytest.mark.parametrize("refused", REFUSED_PARAMS, ids=lambda c: json.dumps(c.params)[:60])
def test_the_warehouse_is_refused_other_parameters(refused: Call) -> None:
    verdict = POLICY.judge(Role.WAREHOUSE, refused)
    assert verdict.rejection is not None
    assert (verdict.rejection.code, verdict.rejection.reason) == (NOT_ALLOWED, "params_not_allowed")
    assert verdict.rejection.status == 403


@pytest.mark.parametrize(
    "method",
    ["eth_sendTransaction", "eth_sign", "anvil_setBalance", "debug_traceCall", "eth_getLogs",
     "eth_newFilter", "personal_unlockAccount", "admin_peers", "eth_accounts"],
)  # fmt: skip
def test_the_warehouse_is_refused_every_other_method(method: str) -> None:
    verdict = POLICY.judge(Role.WAREHOUSE, call(method))
    assert verdict.rejection is not None and verdict.rejection.reason == "method_not_allowed"
    assert method in verdict.rejection.message and "warehouse" in verdict.rejection.message


def test_without_sale_order_rules_the_warehouse_reaches_no_contract() -> None:
    blind = Policy.default(None)
    assert blind.judge(Role.WAREHOUSE, call("eth_call", verify_call())).rejection is not None
    assert blind.judge(Role.WAREHOUSE, call("eth_chainId")).rejection is None


@pytest.mark.parametrize(
    "method",
    ["eth_sendRawTransaction", "eth_sendTransaction", "eth_SendRawTransaction", "ETH_SIGN",
     "eth_signTypedData_v4", "eth_newFilter", "eth_newBlockFilter", "eth_getFilterChanges",
     "eth_uninstallFilter", "eth_subscribe", "eth_submitWork", "anvil_mine", "debug_traceCall",
     "admin_nodeInfo", "personal_sign", "txpool_content"],
)  # fmt: skip
def test_a_reader_never_sends_signs_or_holds_filters(method: str) -> None:
    verdict = POLICY.judge(Role.READER, call(method))
    assert verdict.rejection is not None and verdict.rejection.code == NOT_ALLOWED


@pytest.mark.parametrize(
    "method", ["eth_call", "eth_getLogs", "eth_getBalance", "net_version", "web3_clientVersion"]
)
def test_a_reader_reads(method: str) -> None:
    assert POLICY.judge(Role.READER, call(method, {"anything": 1})).rejection is None


def test_an_operator_may_call_anything() -> None:
    for method in ("anvil_setBalance", "eth_sendTransaction", "debug_traceCall", "x"):
        assert POLICY.judge(Role.OPERATOR, call(method)).rejection is None


def test_besu_style_patterns() -> None:
    assert method_key("eth_getBalance") == ("eth", "getBalance")
    assert method_key("rpc.discover") == ("rpc.discover", "")
    permissions = Permissions(allow=("net:*", "eth:blockNumber"))
    assert permissions.permits("net_version") and permissions.permits("eth_blockNumber")
    assert not permissions.permits("eth_getBalance") and not permissions.permits("eth_blocknumber")
    with pytest.raises(InvalidInput, match="namespace:method"):
        Permissions(allow=("eth_call",))


WAREHOUSE_METHODS = {c.method for c in WAREHOUSE_ALLOWED} | {
    "eth_call", "eth_estimateGas", "eth_sendRawTransaction",
}  # fmt: skip


@given(st.text(max_size=40))
def test_random_method_names_pass_only_the_allow_list(method: str) -> None:
    warehouse = POLICY.permits(Role.WAREHOUSE, method)
    assert warehouse == (method in WAREHOUSE_METHODS)
    if POLICY.permits(Role.READER, method):
        namespace, name = method_key(method)
        assert namespace in ("eth", "net", "web3")
        assert not name.lower().startswith(("send", "sign", "submit"))
        assert "filter" not in name.lower()
    assert POLICY.permits(Role.OPERATOR, method)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["to", "data", "input", "value", "from"]), children, max_size=4
        )
    ),
    max_leaves=12,
)


@given(
    st.sampled_from(sorted(WAREHOUSE_METHODS)),
    st.lists(_JSON, max_size=3) | st.dictionaries(st.text(max_size=3), _JSON, max_size=2),
)
def test_random_params_are_judged_never_crash(method: str, params: object) -> None:
    verdict = POLICY.judge(Role.WAREHOUSE, Call(method, params, 1, False))
    if verdict.rejection is None and method in ("eth_call", "eth_estimateGas"):
        assert isinstance(params, list)
        tx = params[0]
        assert isinstance(tx, dict)
        assert verdict.orders == (str(tx["to"]).lower(),)
        data = str(tx.get("data", tx.get("input")))
        assert bytes.fromhex(data[2:10]) in RULES.view_selectors | {RULES.release_selector}


_UPPER_ORDER = ORDER.upper().replace("0X", "0x")
_CHANGES = st.dictionaries(
    st.sampled_from(["to", "data", "input", "value", "gas"]),
    st.sampled_from(
        [
            _UPPER_ORDER,
            "0x12",
            7,
            None,
            str(verify_call()["data"]).upper().replace("0X", "0x"),
            "0x" + SaleOrder.RELEASE_SELECTOR.hex(),
            "0xdeadbeef",
            0,
            "0x0",
            "0x",
            "0x1",
            1,
            False,
            "<absent>",
        ]
    ),
    max_size=3,
)


def _changed(changes: dict[str, object]) -> dict[str, object]:
    """A well-formed verifyOwnership call with a few fields changed or taken out."""
    tx = verify_call()
    for key, value in changes.items():
        if value == "<absent>":
            tx.pop(key, None)
        else:
            tx[key] = value
    return tx


@settings(max_examples=300)
@given(
    _CHANGES.map(_changed),
    st.sampled_from([(), ("latest",), ("0x10",), ("latest", {}), None]),
)
def test_a_remembered_sale_order_is_judged_as_at_first_sight(
    tx: dict[str, object], rest: tuple[object, ...] | None
) -> None:
    """The eth_call rule's shortcut for known addresses gives the verdict of every check."""
    params: object = tx if rest is None else [tx, *rest]
    warm = Policy.default(RULES)
    for to in (ORDER, _UPPER_ORDER):  # both spellings remembered
        assert warm.verdict(Role.WAREHOUSE, "eth_call", [verify_call(to)]).rejection is None
    first_sight = Policy.default(RULES).verdict(Role.WAREHOUSE, "eth_call", params)
    assert warm.verdict(Role.WAREHOUSE, "eth_call", params) == first_sight
