"""Who may call what through the gateway: roles, method allow-lists and parameter rules.

Paper 004 section 4.6 puts a reverse proxy with basic authentication between devices
and the node; here each device's certificate names an identity, the identity holds a
role (:mod:`pervasive.gateway.roles`), and the role says which calls pass. Sans I/O:
:meth:`Policy.judge` takes a role and a call and returns a :class:`Verdict`; looking up
whether an address is a sale order (a chain read) is left to the caller, which the
verdict tells which addresses must be orders.

Methods are matched as operators know them from Besu's permissions
(``namespace:method``, ``eth:*``, ``*:*``): ``eth_call`` is ``eth:call``. ``*`` inside a
pattern matches any run of characters. Allow patterns match exactly; deny patterns
ignore case, so ``eth_SendRawTransaction`` cannot slip past ``eth:send*``.

The three roles:

- ``operator``: everything (platform services, the operator's tools).
- ``reader``: read-only ``eth_*``, ``net_*``, ``web3_*``: no sends, no signing, no
  filters or subscriptions (they hold state on the node).
- ``warehouse``: paper 004's door device, exactly what it needs. ``eth_chainId``,
  ``eth_blockNumber``; ``eth_call`` and ``eth_estimateGas`` only to a sale order, only of
  its view functions or ``release(address)``, without value or state overrides; and
  what sending ``release(buyer)`` takes: ``eth_sendRawTransaction`` of a signed
  transaction (EIP-155) to a sale order calling ``release`` with no value, its nonce
  (``eth_getTransactionCount``), fees (``eth_getBlockByNumber`` without full
  transactions, ``eth_maxPriorityFeePerGas``, ``eth_gasPrice``, ``eth_feeHistory``), its
  receipt and, for a revert's reason, the transaction (``eth_getTransactionByHash``).

Example::

    policy = Policy.default(SaleOrderRules(SaleOrder.VIEW_SELECTORS,
                                           SaleOrder.RELEASE_SELECTOR, chain_id=31337))
    verdict = policy.judge(Role.WAREHOUSE, call)
    if verdict.rejection: answer(verdict.rejection)
    else: check(verdict.orders); forward(call)
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, NamedTuple

from pervasive.chain import decode_raw_transaction
from pervasive.errors import InvalidInput
from pervasive.gateway.jsonrpc import NOT_ALLOWED, Call

__all__ = [
    "ALLOWED",
    "READER_DENIED",
    "ParamRule",
    "Permissions",
    "Policy",
    "Rejection",
    "Role",
    "RolePolicy",
    "SaleOrderRules",
    "Verdict",
    "method_key",
]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_HASH = re.compile(r"0x[0-9a-fA-F]{64}")
_HEX = re.compile(r"0x[0-9a-fA-F]*")
_CACHE_LIMIT = 4096


class Role(enum.StrEnum):
    """What an identity may do through the gateway."""

    WAREHOUSE = "warehouse"
    READER = "reader"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a call is refused: JSON-RPC code, counter key, message and HTTP status."""

    code: int
    reason: str
    message: str
    status: int = 403


class Verdict(NamedTuple):
    """A call's fate: refused (``rejection``), or allowed once ``orders`` are sale orders.

    A named tuple: one is built per judged call.
    """

    rejection: Rejection | None = None
    orders: tuple[str, ...] = ()
    """Lower-case addresses the call reaches that must be sale orders."""


ALLOWED = Verdict()
"""The verdict of a call allowed as it is."""

ParamRule = Callable[[Any], Verdict]
"""Judges the ``params`` of one method for one role."""


def method_key(method: str) -> tuple[str, str]:
    """``eth_call`` as Besu's ``("eth", "call")``; a name without ``_`` is all namespace.

    Example: ``method_key("anvil_setBalance") == ("anvil", "setBalance")``.
    """
    namespace, _, name = method.partition("_")
    return namespace, name


def _matches(pattern: str, method: str, *, fold: bool) -> bool:
    if pattern == "*":
        return True
    namespace, name = method_key(method.lower() if fold else method)
    want_namespace, _, want_name = (pattern.lower() if fold else pattern).partition(":")
    return fnmatchcase(namespace, want_namespace) and fnmatchcase(name, want_name or "")


@dataclass(frozen=True)
class Permissions:
    """A method allow-list with exceptions, in Besu's ``namespace:method`` patterns.

    Example: ``Permissions(allow=("eth:*",), deny=("eth:send*",)).permits("eth_call")``.
    """

    allow: tuple[str, ...]
    deny: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for pattern in (*self.allow, *self.deny):
            if pattern != "*" and pattern.count(":") != 1:
                raise InvalidInput(
                    f"a method pattern is namespace:method (e.g. eth:*), not {pattern!r}"
                )

    def permits(self, method: str) -> bool:
        """Whether ``method`` matches an allow pattern and no deny pattern."""
        if not any(_matches(p, method, fold=False) for p in self.allow):
            return False
        return not any(_matches(p, method, fold=True) for p in self.deny)


@dataclass(frozen=True)
class RolePolicy:
    """One role: its method permissions and, per method, a rule for the parameters."""

    permissions: Permissions
    rules: Mapping[str, ParamRule] = field(default_factory=dict)


@dataclass(frozen=True)
class SaleOrderRules:
    """What the warehouse role needs to know about sale orders (paper 004 section 4.4)."""

    view_selectors: frozenset[bytes]
    """4-byte selectors of a sale order's view functions (``SaleOrder.VIEW_SELECTORS``)."""
    release_selector: bytes
    """The selector of ``release(address)`` (``SaleOrder.RELEASE_SELECTOR``)."""
    chain_id: int | None = None
    """The chain a release must be signed for (``None``: any EIP-155 chain id)."""

    @property
    def readable(self) -> frozenset[str]:
        """Selectors an ``eth_call`` or ``eth_estimateGas`` may use, as lower-case hex."""
        return frozenset(s.hex() for s in self.view_selectors | {self.release_selector})


def _refuse(message: str) -> Verdict:
    return Verdict(Rejection(NOT_ALLOWED, "params_not_allowed", message))


def _no_params(method: str) -> ParamRule:
    def rule(params: Any) -> Verdict:
        return ALLOWED if not params else _refuse(f"{method} takes no params")

    return rule


def _positional(params: Any, method: str, low: int, high: int) -> list[Any] | Verdict:
    if not isinstance(params, list) or not low <= len(params) <= high:
        wanted = str(low) if low == high else f"{low} to {high}"
        return _refuse(f"{method} takes {wanted} positional params here")
    return params


def _contract_call(rules: SaleOrderRules, method: str) -> ParamRule:
    """``eth_call`` / ``eth_estimateGas``: a sale order's views or release, no value."""
    readable = rules.readable
    # 'to' as sent -> its verdict, for the addresses already found well-formed: the
    # warehouse's every call reaches one of a few orders, so this spares the regular
    # expression and the verdict's allocation per call (bounded: random addresses)
    verdicts: dict[str, Verdict] = {}

    def rule(params: Any) -> Verdict:
        # the call as web3.py and ethers send it, to an address seen well-formed before:
        # [{"to": ..., "data": selector...}, block] without value or input; anything
        # else (or a first sight) takes every check below, with its reason
        if type(params) is list and 0 < len(params) < 3:
            tx = params[0]
            if type(tx) is dict:
                to = tx.get("to")
                data = tx.get("data")
                if type(to) is str and type(data) is str and data[2:10] in readable:
                    verdict = verdicts.get(to)
                    if verdict is not None and "value" not in tx and "input" not in tx:
                        return verdict
        return checked(params)

    def checked(params: Any) -> Verdict:
        if type(params) is list and 1 <= len(params) <= 2:
            tx = params[0]
        else:
            checked = _positional(params, method, 1, 2)  # no state or block overrides
            if isinstance(checked, Verdict):
                return checked
            tx = checked[0]
        if not isinstance(tx, dict):
            return _refuse(f"the first param of {method} is a transaction object")
        to = tx.get("to")
        verdict = verdicts.get(to) if type(to) is str else None
        if verdict is None:
            if not isinstance(to, str) or not _ADDRESS.fullmatch(to):
                return _refuse(f"{method} here goes to a sale order: 'to' must be a 0x address")
            verdict = Verdict(orders=(to.lower(),))
            if len(verdicts) < _CACHE_LIMIT:
                verdicts[to] = verdict
        if "data" in tx:
            data = tx["data"]
            if "input" in tx and tx["input"] != data:
                return _refuse(f"{method} with different 'data' and 'input' is refused")
        else:
            data = tx.get("input")
        if (
            not isinstance(data, str)
            or len(data) < 10
            or (data[2:10] not in readable and data[2:10].lower() not in readable)
        ):
            return _refuse(
                f"{method} here calls a sale order's view functions or release(address) only"
            )
        value = tx.get("value")
        if value is not None and value not in (0, "0x0", "0x", "0x00"):
            return _refuse(f"{method} here carries no value")
        return verdict

    return rule


def _release(rules: SaleOrderRules) -> ParamRule:
    """``eth_sendRawTransaction``: a signed ``release(address)`` to a sale order only."""
    release = rules.release_selector

    def rule(params: Any) -> Verdict:
        checked = _positional(params, "eth_sendRawTransaction", 1, 1)
        if isinstance(checked, Verdict):
            return checked
        raw = checked[0]
        if not isinstance(raw, str) or not _HEX.fullmatch(raw) or len(raw) % 2:
            return _refuse("eth_sendRawTransaction takes the signed transaction as 0x hex")
        try:
            tx = decode_raw_transaction(bytes.fromhex(raw[2:]))
        except InvalidInput:
            return _refuse("eth_sendRawTransaction: the bytes are no signed transaction")
        if tx.to is None:
            return _refuse("the warehouse role deploys no contracts")
        if tx.data[:4] != release or len(tx.data) != 36:
            return _refuse("the warehouse role sends release(buyer) to sale orders only")
        if tx.value:
            return _refuse("a release carries no value")
        if tx.chain_id is None:
            return _refuse("sign the release for this chain (EIP-155 chain id)")
        if rules.chain_id is not None and tx.chain_id != rules.chain_id:
            return _refuse(f"the release is signed for chain {tx.chain_id}, not {rules.chain_id}")
        return Verdict(orders=(tx.to.lower(),))

    return rule


def _hash_param(method: str) -> ParamRule:
    def rule(params: Any) -> Verdict:
        checked = _positional(params, method, 1, 1)
        if isinstance(checked, Verdict):
            return checked
        if not isinstance(checked[0], str) or not _HASH.fullmatch(checked[0]):
            return _refuse(f"{method} takes a 32-byte 0x transaction hash")
        return ALLOWED

    return rule


def _nonce(params: Any) -> Verdict:
    checked = _positional(params, "eth_getTransactionCount", 1, 2)
    if isinstance(checked, Verdict):
        return checked
    if not isinstance(checked[0], str) or not _ADDRESS.fullmatch(checked[0]):
        return _refuse("eth_getTransactionCount takes a 0x address")
    return ALLOWED


def _block_header(params: Any) -> Verdict:
    checked = _positional(params, "eth_getBlockByNumber", 2, 2)
    if isinstance(checked, Verdict):
        return checked
    if checked[1] is not False:
        return _refuse("eth_getBlockByNumber here reads headers only: pass false")
    return ALLOWED


def _warehouse(rules: SaleOrderRules | None) -> RolePolicy:
    plain = ("chainId", "blockNumber", "maxPriorityFeePerGas", "gasPrice")
    methods = [
        *plain,
        "feeHistory",
        "getBlockByNumber",
        "getTransactionCount",
        "getTransactionReceipt",
        "getTransactionByHash",
    ]
    checks: dict[str, ParamRule] = {f"eth_{name}": _no_params(f"eth_{name}") for name in plain}
    checks["eth_getBlockByNumber"] = _block_header
    checks["eth_getTransactionCount"] = _nonce
    checks["eth_getTransactionReceipt"] = _hash_param("eth_getTransactionReceipt")
    checks["eth_getTransactionByHash"] = _hash_param("eth_getTransactionByHash")
    if rules is not None:
        methods += ["call", "estimateGas", "sendRawTransaction"]
        checks["eth_call"] = _contract_call(rules, "eth_call")
        checks["eth_estimateGas"] = _contract_call(rules, "eth_estimateGas")
        checks["eth_sendRawTransaction"] = _release(rules)
    return RolePolicy(Permissions(allow=tuple(f"eth:{m}" for m in methods)), checks)


READER_DENIED = (
    "eth:send*",
    "eth:sign*",
    "eth:*filter*",
    "eth:subscribe",
    "eth:unsubscribe",
    "eth:submit*",
)
"""What the reader role may not call of ``eth_*`` (matched ignoring case)."""


class Policy:
    """Roles and their rules; :meth:`judge` decides one call.

    Example::

        policy = Policy.default(rules)
        policy.judge(Role.READER, Call("eth_sendTransaction", [], 1, False)).rejection.code
    """

    def __init__(self, roles: Mapping[Role, RolePolicy]) -> None:
        self.roles = dict(roles)
        # per (role, method): the rule that judges its params; a method without a rule
        # has _allowed, one the role may not call a _Forbidden
        self._rules: dict[tuple[Role, str], ParamRule] = {}

    @classmethod
    def default(cls, sale_orders: SaleOrderRules | None = None) -> Policy:
        """The ``warehouse``, ``reader`` and ``operator`` roles of the module docstring.

        Without ``sale_orders`` the warehouse role reaches no contract at all.

        Example: ``Policy.default(SaleOrderRules(views, release, chain_id=31337))``.
        """
        reader = Permissions(allow=("eth:*", "net:*", "web3:*"), deny=READER_DENIED)
        return cls(
            {
                Role.WAREHOUSE: _warehouse(sale_orders),
                Role.READER: RolePolicy(reader),
                Role.OPERATOR: RolePolicy(Permissions(allow=("*",))),
            }
        )

    def permits(self, role: Role, method: str) -> bool:
        """Whether ``role`` may call ``method`` at all (before its parameters are looked at)."""
        return type(self._rule(role, method)) is not _Forbidden

    def _rule(self, role: Role, method: str) -> ParamRule:
        key = (role, method)
        rule = self._rules.get(key)
        if rule is None:
            policy = self.roles[role]
            if policy.permissions.permits(method):
                rule = policy.rules.get(method, _allowed)
            else:
                rule = _Forbidden(f"{_clip(method)} is not allowed for the {role} role")
            if len(self._rules) < _CACHE_LIMIT:  # random names must not grow it forever
                self._rules[key] = rule
        return rule

    def judge(self, role: Role, call: Call) -> Verdict:
        """The verdict on ``call`` made by an identity holding ``role``."""
        return self.verdict(role, call.method, call.params)

    def verdict(self, role: Role, method: str, params: Any) -> Verdict:
        """The verdict on a call of ``method`` with ``params`` by an identity holding ``role``.

        Example: ``policy.verdict(Role.READER, "eth_chainId", []) is ALLOWED``.
        """
        rule = self._rules.get((role, method))
        if rule is None:
            rule = self._rule(role, method)
        return rule(params)

    def methods(self, role: Role) -> Iterable[str]:
        """The patterns ``role`` is allowed (for ``pervasive gateway roles``)."""
        return self.roles[role].permissions.allow


def _allowed(params: Any) -> Verdict:
    """The rule of a permitted method without parameter rules."""
    return ALLOWED


class _Forbidden:
    """The rule of a method the role may not call: refused whatever its params."""

    __slots__ = ("verdict",)

    def __init__(self, message: str) -> None:
        self.verdict = Verdict(Rejection(NOT_ALLOWED, "method_not_allowed", message))

    def __call__(self, params: Any) -> Verdict:
        return self.verdict


def _clip(method: str) -> str:
    return method if len(method) <= 64 else method[:61] + "..."
