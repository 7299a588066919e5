"""The committee file: what every notary member and every party agrees on before setup.

Paper 003, section V-A: C and P negotiate the period ``T`` and hand it to the service
provider SP, whose ``n`` members then generate the group key. Everything the members
must agree on before the first message is one JSON file, ``committee.json``:

```json
{"chain_id": 31337, "threshold": 3, "setup_nonce": "0x…32 bytes…",
 "publish_window": 30, "period_end": 1796000000, "coef_percent": 150,
 "dkg_start": 1765000000.0, "dkg_step": 5.0,
 "members": [{"index": 1, "public_key": "0x04…", "url": "http://127.0.0.1:8701"}, …],
 "contracts": {"notary": "0x…", "oracle": "0x…", "user_contract": "0x…", "from_block": 7}}
```

``contracts`` is absent until the committee has deployed them after its key
generation (the convener, member 1, deploys and announces them; the others check the
deployed code holds their group key). ``url`` is where the member answers the deposit
check and takes challenges.

Example::

    spec = CommitteeSpec.load(Path("committee.json"))
    spec.member(2).address
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from pervasive.crypto import PublicKey, checksum_address
from pervasive.errors import ConfigError, InvalidInput
from pervasive.store.files import write_public

__all__ = ["CommitteeContracts", "CommitteeMember", "CommitteeSpec"]


@dataclass(frozen=True)
class CommitteeMember:
    """One notary member: its index (1..n), secp256k1 public key and HTTP endpoint."""

    index: int
    public_key: PublicKey
    url: str

    @property
    def address(self) -> str:
        """The address of the member's key: its envelope signatures and chain account."""
        return self.public_key.address


@dataclass(frozen=True)
class CommitteeContracts:
    """The contracts on B_u the committee serves."""

    notary: str
    """C_sp: deposits locked under the group key."""
    oracle: str
    """C_o: accepts t-of-n deposit attestations."""
    user_contract: str
    """C_u: the consumers' payments (Algorithm 1)."""
    from_block: int
    """The block the contracts were deployed in: where event searches start."""


@dataclass(frozen=True)
class CommitteeSpec:
    """Everything the members agree on before setup (see the module docstring)."""

    chain_id: int
    threshold: int
    setup_nonce: bytes
    publish_window: int
    period_end: int
    coef_percent: int
    dkg_start: float
    dkg_step: float
    members: tuple[CommitteeMember, ...]
    contracts: CommitteeContracts | None = None

    def __post_init__(self) -> None:
        n = len(self.members)
        if not n:
            raise InvalidInput("the committee has no members: list at least one")
        if [m.index for m in self.members] != list(range(1, n + 1)):
            raise InvalidInput("members must be listed with indices 1..n in order")
        if len({m.address for m in self.members}) != n:
            raise InvalidInput("a member key is listed twice: each member needs its own key")
        if not 1 <= self.threshold <= n:
            raise InvalidInput(f"the threshold must be in 1..{n}, got {self.threshold}")
        if len(self.setup_nonce) != 32:
            raise InvalidInput("the setup nonce is 32 random bytes")
        if not (math.isfinite(self.dkg_start) and math.isfinite(self.dkg_step)):
            raise InvalidInput("dkg_start and dkg_step must be finite numbers of seconds")
        if self.publish_window <= 0 or self.coef_percent < 100 or self.dkg_step <= 0:
            raise InvalidInput(
                "publish_window and dkg_step must be positive and coef_percent at least 100"
            )

    @property
    def n(self) -> int:
        """The number of members."""
        return len(self.members)

    @property
    def addresses(self) -> tuple[str, ...]:
        """The members' addresses in index order."""
        return tuple(m.address for m in self.members)

    def member(self, index: int) -> CommitteeMember:
        """The member with ``index`` (1..n)."""
        if not 1 <= index <= self.n:
            raise InvalidInput(f"there is no member {index}: the committee has 1..{self.n}")
        return self.members[index - 1]

    def index_of(self, address: str) -> int:
        """The index of the member whose key has ``address``."""
        wanted = checksum_address(address)
        for member in self.members:
            if member.address == wanted:
                return member.index
        raise InvalidInput(f"{wanted} is not a member of this committee")

    def with_contracts(self, contracts: CommitteeContracts) -> CommitteeSpec:
        """The same committee serving ``contracts``."""
        return replace(self, contracts=contracts)

    # -- the file -----------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """The JSON form :meth:`from_json` reads."""
        return {
            "chain_id": self.chain_id,
            "threshold": self.threshold,
            "setup_nonce": "0x" + self.setup_nonce.hex(),
            "publish_window": self.publish_window,
            "period_end": self.period_end,
            "coef_percent": self.coef_percent,
            "dkg_start": self.dkg_start,
            "dkg_step": self.dkg_step,
            "members": [
                {"index": m.index, "public_key": "0x" + m.public_key.to_bytes().hex(), "url": m.url}
                for m in self.members
            ],
            "contracts": asdict(self.contracts) if self.contracts else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CommitteeSpec:
        """Parse the committee file's JSON; :class:`InvalidInput` names the bad field."""
        document = _object(data, "the committee file")
        members = tuple(
            _member(position, value)
            for position, value in enumerate(_field(document, "members", _array), start=1)
        )
        contracts = document.get("contracts")
        deployed = None
        if contracts is not None:
            contracts = _object(contracts, "the committee file's contracts")
            deployed = CommitteeContracts(
                notary=_field(contracts, "notary", _address, "contracts."),
                oracle=_field(contracts, "oracle", _address, "contracts."),
                user_contract=_field(contracts, "user_contract", _address, "contracts."),
                from_block=_field(contracts, "from_block", _integer, "contracts."),
            )
        return cls(
            chain_id=_field(document, "chain_id", _integer),
            threshold=_field(document, "threshold", _integer),
            setup_nonce=_field(document, "setup_nonce", _hex),
            publish_window=_field(document, "publish_window", _integer),
            period_end=_field(document, "period_end", _integer),
            coef_percent=_field(document, "coef_percent", _integer),
            dkg_start=_field(document, "dkg_start", _number),
            dkg_step=_field(document, "dkg_step", _number),
            members=members,
            contracts=deployed,
        )

    @classmethod
    def load(cls, path: Path) -> CommitteeSpec:
        """Read ``path``; :class:`ConfigError` with what to do if it cannot be used."""
        try:
            return cls.from_json(json.loads(path.read_bytes()))
        except OSError as exc:
            raise ConfigError(f"cannot read the committee file {path}: {exc.strerror}") from exc
        except (UnicodeDecodeError, json.JSONDecodeError, InvalidInput) as exc:
            raise ConfigError(f"{path} is not a committee file: {exc}") from exc

    def save(self, path: Path) -> None:
        """Write the committee file (atomically: a reader never sees half a file)."""
        write_public(path, json.dumps(self.to_json(), indent=2) + "\n")


_T = TypeVar("_T")


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _field(data: dict[str, Any], name: str, convert: Callable[[Any], _T], where: str = "") -> _T:
    """``convert(data[name])``; :class:`InvalidInput` naming the field if it is missing or bad."""
    if name not in data:
        raise InvalidInput(f"the committee file is malformed: {where}{name} is missing")
    try:
        return convert(data[name])
    except (TypeError, ValueError) as exc:  # InvalidInput is a ValueError
        raise InvalidInput(f"the committee file is malformed: {where}{name}: {exc}") from exc


def _member(position: int, value: object) -> CommitteeMember:
    where = f"members[{position}]."
    member = _object(value, f"the committee file's {where[:-1]}")
    return CommitteeMember(
        _field(member, "index", _integer, where),
        _field(member, "public_key", _public_key, where),
        _field(member, "url", _text, where),
    )


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"expected an integer, got {value!r}")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"expected a number, got {value!r}")
    return float(value)


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"expected a string, got {value!r}")
    return value


def _array(value: object) -> list[Any]:
    if not isinstance(value, list):
        raise InvalidInput(f"expected a JSON array, got {type(value).__name__}")
    return value


def _hex(value: object) -> bytes:
    return bytes.fromhex(_text(value).removeprefix("0x"))


def _address(value: object) -> str:
    return checksum_address(_text(value))


def _public_key(value: object) -> PublicKey:
    return PublicKey.from_bytes(_hex(value))
