"""Test harness: sensors, agreements, and an in-memory network that delivers Send actions.

A plain module (not conftest.py) with a unique name, so test files import it safely.
"""

from __future__ import annotations

import collections
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from pervasive.committee import Send
from pervasive.crypto import PrivateKey
from pervasive.domain import AgreementTerms, QoS, Reaction, ReactionKind, SigningMode
from pervasive.errors import ReplayedMessage
from pervasive.offchain import (
    Action,
    AgreementSpec,
    FunctionRegistry,
    NodeProtocol,
    OffchainFunction,
    WindowArray,
    WindowBuilder,
)
from pervasive.sensing import SensorDeclaration, SensorMessage, sign_sensor_message

AGREEMENT = "0x00000000000000000000000000000000000A11cE"
SENSOR_KEYS = [PrivateKey(bytes([0x51 + i]) * 32) for i in range(3)]
NODE_KEYS = [PrivateKey(bytes([0x11 + i]) * 32) for i in range(4)]
PARTY_KEYS = [PrivateKey(bytes([0x31 + i]) * 32) for i in range(2)]


def total_of(windows: WindowArray) -> str:
    """Sum of the 'reading' of every message: the off-chain function of most tests."""
    from pervasive.crypto import abi_decode

    total = 0
    for message in windows.messages():
        _, reading = abi_decode(["string", "int64"], message.values)
        total += reading
    return str(total)


REGISTRY = FunctionRegistry()
TOTAL = REGISTRY.register("total", total_of)


def declaration(index: int = 0) -> SensorDeclaration:
    return SensorDeclaration.create(
        SENSOR_KEYS[index].public_key, "meter", [("label", "string"), ("reading", "int64")]
    )


def trace(index: int, count: int, start: int = 0) -> list[SensorMessage]:
    decl = declaration(index)
    return [
        sign_sensor_message(SENSOR_KEYS[index], decl, q, [f"m{q}", q * 10 + index])
        for q in range(start, start + count)
    ]


def make_spec(
    nodes: int = 2,
    *,
    sensors: int = 1,
    mode: SigningMode = SigningMode.RING,
    qos: QoS = QoS.OFFCHAIN_PROOF,
    size: int = 3,
    sliding: int = 3,
    static_leader: int | None = 0,
    function: OffchainFunction = TOTAL,
) -> AgreementSpec:
    decls = tuple(declaration(i) for i in range(sensors))
    return spec_of(
        decls, nodes=nodes, mode=mode, qos=qos, size=size, sliding=sliding,
        static_leader=static_leader, function=function,
    )  # fmt: skip


def spec_of(
    decls: Sequence[SensorDeclaration],
    *,
    nodes: int = 2,
    mode: SigningMode = SigningMode.RING,
    qos: QoS = QoS.OFFCHAIN_PROOF,
    size: int = 3,
    sliding: int = 3,
    static_leader: int | None = 0,
    function: OffchainFunction = TOTAL,
    address: str = AGREEMENT,
) -> AgreementSpec:
    """An agreement over ``decls`` whose terms the parties of PARTY_KEYS signed."""
    terms = AgreementTerms(
        parties=tuple(k.address for k in PARTY_KEYS),
        sensors=tuple(d.address for d in decls),
        start_points=(0,) * len(decls),
        window_size=size,
        sliding_factor=sliding,
        function_name=function.name,
        function_hash=function.source_hash,
        nodes=tuple(k.address for k in NODE_KEYS[:nodes]),
        node_parties=tuple(i % 2 for i in range(nodes)),
        qos=qos,
        reward=0,
        reaction=Reaction(ReactionKind.NONE),
        expiry=2**40,
        signing=mode,
        leader=static_leader,
    )
    return AgreementSpec(address=address, chain_id=31337, terms=terms, sensors=tuple(decls))


def windows_for(spec: AgreementSpec, count: int) -> list[WindowArray]:
    builder = WindowBuilder(spec.window)
    out: list[WindowArray] = []
    needed = spec.window.sliding * (count - 1) + spec.window.size
    for index in range(len(spec.sensors)):
        for message in trace(index, needed):
            out += builder.add(message)
    return out[:count]


@dataclass
class Network:
    """Delivers every Send to its recipients, FIFO; records outcomes per node."""

    nodes: dict[str, NodeProtocol]
    now: float = 0.0
    queue: collections.deque[tuple[str, bytes]] = field(default_factory=collections.deque)
    outcomes: dict[str, list[Action]] = field(default_factory=lambda: collections.defaultdict(list))
    drop: Callable[[str, str, Send], bool] = lambda sender, recipient, send: False
    delivered: int = 0
    sent: list[tuple[str, Send]] = field(default_factory=list)

    def absorb(self, sender: str, actions: Sequence[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                self.sent.append((sender, action))
                for recipient in action.recipients:
                    if not self.drop(sender, recipient, action):
                        self.queue.append((recipient, action.envelope.encode()))
            else:
                self.outcomes[sender].append(action)

    def start(self, address: str, windows: WindowArray) -> None:
        self.absorb(address, self.nodes[address].start_window(windows, self.now))

    def run(self, limit: int = 10_000, rng: random.Random | None = None) -> None:
        while self.queue and limit:
            limit -= 1
            if rng is not None:
                self.queue.rotate(-rng.randrange(len(self.queue)))
            recipient, payload = self.queue.popleft()
            if recipient not in self.nodes:
                continue
            self.delivered += 1
            try:
                self.absorb(recipient, self.nodes[recipient].receive(payload, self.now))
            except ReplayedMessage:
                continue
        assert limit, "network did not quiesce"

    def tick(self, dt: float) -> None:
        self.now += dt
        for address, node in list(self.nodes.items()):
            self.absorb(address, node.tick(self.now))
        self.run()

    def of(self, address: str, kind: type) -> list[Action]:
        return [a for a in self.outcomes[address] if isinstance(a, kind)]

    def all_of(self, kind: type) -> list[Action]:
        return [a for actions in self.outcomes.values() for a in actions if isinstance(a, kind)]


def build_network(
    spec: AgreementSpec, functions: dict[int, OffchainFunction] | None = None, **kwargs
) -> Network:
    nodes = {}
    for index, key in enumerate(NODE_KEYS[: len(spec.nodes)]):
        fn = (functions or {}).get(index, TOTAL)
        nodes[key.address] = NodeProtocol(key, spec, fn, **kwargs)
    return Network(nodes)
