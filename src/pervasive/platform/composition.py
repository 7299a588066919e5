"""``Platform``: the one composition root, from settings to running parts.

One object builds what a pervasive process needs from one
:class:`~pervasive.config.Settings`: the ledger (``chain/``), the certificate
authority (``pki/``), the MQTT broker (``messaging/``) and the shadow service
(``shadow/``), plus the option objects the settings' sections describe
(:meth:`client_options`, :meth:`node_options`), and the platform's CloudEvents feed
(:meth:`interop`). Parts are built on first use and in
dependency order (the shadow service needs the broker, which needs the CA); they stop
in the reverse order when the platform stops, each one even when another failed.
Nothing is built at import time and nothing is global: tests build one per test.

Layout of the data directory (``settings.home``, the *root* unless ``pki`` moves it)::

    pki/              the CA (key encrypted with the platform password), CRL, broker cert
    mqtt/<identity>/  client credentials the platform issued (svc:shadow, nodes, ...)
    broker/admitted.json   identities the running broker admits (see messaging/admission)
    mosquitto/        mosquitto's configuration, ACL, log and persistence
    shadow.sqlite     the shadow store; chain/  the embedded chain or anvil's state
    interop/events.sqlite   the one CloudEvents log (platform and services, by origin)

Example::

    async with Platform(load_settings(), password="s3cret") as platform:
        ledger = await platform.ledger()
        broker = await platform.broker()
        options = platform.client_options("lock-7")
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self
from urllib.parse import urlsplit

from pervasive.config import NodeSettings, Settings, ShadowSettings
from pervasive.errors import ConfigError, InvalidInput
from pervasive.platform.run_file import (
    Endpoint,
    RunRecord,
    pid_alive,
    read_run_record,
    run_file,
)

if TYPE_CHECKING:  # the chain stack takes seconds to import: only when a part needs it
    from pervasive.chain import Ledger, Signer
    from pervasive.contracts import DeploymentBook, SaleOrderFactory
    from pervasive.contracts.oracle_hub import OracleHub
    from pervasive.gateway import Gateway, OrderCheck
    from pervasive.interop import InteropFeed
    from pervasive.messaging import (
        ClientCredentials,
        ClientOptions,
        EmbeddedBroker,
        MosquittoBroker,
        MqttClient,
    )
    from pervasive.pki import CertificateAuthority
    from pervasive.shadow import ShadowService
    from pervasive.web import WebServer

__all__ = [
    "INTEROP_IDENTITY",
    "OPERATOR_IDENTITY",
    "SHADOW_IDENTITY",
    "Part",
    "Platform",
    "RunningInterop",
    "RunningShadow",
]

Part = Literal["ledger", "authority", "broker", "shadow", "interop", "gateway", "web"]
"""What :meth:`Platform.start` can start by name."""

SHADOW_IDENTITY = "svc:shadow"
"""The MQTT identity of the shadow service."""

INTEROP_IDENTITY = "svc:service.platform"
"""The MQTT identity the platform's CloudEvents feed publishes as (``pervasive/events/#``)."""

OPERATOR_IDENTITY = "svc:operator"
"""The identity with the gateway's ``operator`` role: this data directory's own commands
reach the embedded chain through it while ``pervasive up`` holds the chain."""


@dataclass
class RunningShadow:
    """The shadow service, its MQTT session and the task that serves it."""

    service: ShadowService
    client: MqttClient
    task: asyncio.Task[None]


@dataclass
class RunningInterop:
    """The platform's CloudEvents feed (origin ``platform``), its MQTT session and task."""

    feed: InteropFeed
    client: MqttClient
    task: asyncio.Task[None]


class Platform:
    """Ledger, CA, broker and shadow service, built from ``settings`` on first use.

    ``password`` unlocks the CA key: a string, or a callable asked once when the CA
    is first opened (the CLI's prompt); else ``settings.password``. ``persist=False``
    gives the embedded and anvil backends a throw-away chain. ``pki`` moves the CA
    folder (default ``<home>/pki``); its parent is the root of the CA-related files
    (``mqtt/``, ``broker/``, ``mosquitto/``), so a demo can keep its own CA beside the
    platform's. ``shared=True`` says other processes of the data directory use this
    platform's broker (``pervasive up``, ``broker run``): the broker then also follows
    certificates they issue or revoke and lists whom it admits for them.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        password: str | Callable[[], str] | None = None,
        persist: bool = True,
        pki: Path | None = None,
        shared: bool = False,
    ) -> None:
        self.settings = settings
        self._password = password
        self._persist = persist
        self._shared = shared
        self._pki = pki or settings.home / "pki"
        self._stack = AsyncExitStack()
        self._authority: CertificateAuthority | None = None
        self._ledger: Ledger | None = None
        self._broker: MosquittoBroker | EmbeddedBroker | None = None
        self._shadow: RunningShadow | None = None
        self._interop: RunningInterop | None = None
        self._book: DeploymentBook | None = None
        self._gateway: Gateway | None = None
        self._web: WebServer | None = None
        self._locks: dict[str, asyncio.Lock] = {}
        self._stopped = False

    # -- paths ---------------------------------------------------------------

    @property
    def root(self) -> Path:
        """The folder of the CA-related files: ``pki/``'s parent (the data directory)."""
        return self._pki.parent

    @property
    def pki_directory(self) -> Path:
        """The CA's folder."""
        return self._pki

    # -- parts ---------------------------------------------------------------

    @property
    def authority(self) -> CertificateAuthority:
        """The platform CA, opened (or created) on first use and closed on stop.

        Example: ``platform.authority.issue_device("lock-7")``.
        """
        self._check_open()
        if self._authority is None:
            from pervasive.pki import CertificateAuthority

            authority = CertificateAuthority.open(self._pki, self._unlock())
            self._stack.callback(authority.close)
            self._authority = authority
        return self._authority

    async def ledger(self) -> Ledger:
        """The ledger of ``settings.backend``, opened (anvil: started) on first use.

        Example: ``block = await (await platform.ledger()).block_number()``.
        """
        async with self._lock("ledger"):
            self._check_open()
            if self._ledger is None:
                from pervasive.chain import open_ledger

                lent = self._lent_chain() if self._persist and not self._shared else None
                if lent is not None:
                    ledger = await self._borrow_embedded(lent)
                else:
                    ledger = await open_ledger(self.settings, persist=self._persist)
                self._stack.push_async_callback(ledger.close)
                self._ledger = ledger
        return self._ledger

    def _lent_chain(self) -> str | None:
        """The gateway URL of a live ``pervasive up`` holding this directory's embedded chain."""
        if self.settings.backend != "embedded":
            return None
        record = read_run_record(run_file(self.settings.home))
        if record is None or not pid_alive(record.pid):
            return None
        urls = [e.address for e in record.endpoints if e.name == "gateway"]
        return urls[0] if urls else None

    async def _borrow_embedded(self, url: str) -> Ledger:
        """The embedded chain ``pervasive up`` holds, through its gateway as the operator."""
        from pervasive.chain import open_embedded_via_gateway

        credentials = self.authority.client_credentials(OPERATOR_IDENTITY, self.root / "mqtt")
        return await open_embedded_via_gateway(url, self.settings, credentials.ssl_context())

    async def broker(self) -> MosquittoBroker | EmbeddedBroker:
        """The broker ``settings.broker`` asks for, started with the CA's identities.

        Certificates the CA issues or revokes in this process reach the broker at once
        (a CA listener). On a ``shared`` platform those issued by other processes of
        the same data directory reach it at the next look of the admission watch, which
        also lists the admitted identities for them (``messaging/admission.py``).

        Example: ``port = (await platform.broker()).port``.
        """
        async with self._lock("broker"):
            self._check_open()
            if self._broker is None:
                from pervasive.messaging import admission_watch, admitted_file, create_broker
                from pervasive.messaging.mosquitto import BROKER_ADMIN_IDENTITY

                ca = self.authority
                broker = create_broker(
                    self.settings,
                    ca.broker_credentials(),
                    ca.active_identities,
                    directory=self.root / "mosquitto",
                    admin=lambda: ca.client_credentials(BROKER_ADMIN_IDENTITY, self.root / "mqtt"),
                )
                await self._stack.enter_async_context(broker)
                if self._shared:
                    watch = await self._stack.enter_async_context(
                        admission_watch(
                            broker, ca.active_identities, ca.crl_file, admitted_file(self.root)
                        )
                    )
                    ca.add_listener(watch.refresh)
                else:
                    ca.add_listener(broker.refresh)
                self._broker = broker
        return self._broker

    async def shadow(self) -> RunningShadow:
        """The shadow service on this platform's broker as ``svc:shadow``, serving.

        Shadows persist in ``<home>/shadow.sqlite``; the ``[shadow]`` settings bound it.

        Example: ``(await platform.shadow()).service.rejections[409]``.
        """
        async with self._lock("shadow"):
            self._check_open()
            if self._shadow is None:
                from pervasive.messaging import MqttClient
                from pervasive.shadow import ShadowCore, ShadowService, ShadowStore

                broker = await self.broker()
                options = self.client_options(SHADOW_IDENTITY, manual_ack=True)
                await broker.settle()
                store = ShadowStore.open(self.settings.path("shadow.sqlite"))
                self._stack.callback(store.close)
                client = MqttClient(options)
                await self._stack.enter_async_context(client)
                service = ShadowService(client, store, ShadowCore(self.shadow_limits()))
                task = asyncio.create_task(service.run(), name="shadow service")
                self._stack.push_async_callback(_cancel, task)
                self._shadow = RunningShadow(service, client, task)
        return self._shadow

    async def interop(self) -> RunningInterop:
        """The platform's CloudEvents feed, following and publishing as ``platform``.

        Into the data directory's one event log (``<root>/interop/events.sqlite``, which
        the web app streams): shadow changes (a :meth:`shadow` listener), the sale-order
        factory's orders once :meth:`deployments` records it, and the DIVERSITY
        agreements its registry records (:class:`~pervasive.interop.PlatformContracts`,
        looked at every ``[web] dashboard_interval``). Published on this platform's
        broker as :data:`INTEROP_IDENTITY` (only the ``platform`` events: each service
        publishes its own).

        Example: ``(await platform.interop()).feed.counters["published"]``.
        """
        async with self._lock("interop"):
            self._check_open()
            if self._interop is None:
                from pervasive.interop import InteropFeed, PlatformContracts, events_path
                from pervasive.messaging import MqttClient

                ledger = await self.ledger()
                shadow = await self.shadow()
                broker = await self.broker()
                options = self.client_options(INTEROP_IDENTITY)
                await broker.settle()  # mosquitto admits a new identity after its reload
                feed = InteropFeed(
                    ledger,
                    self.root,
                    name="platform",
                    confirmations=self.settings.service.event_confirmations,
                    poll_interval=self.settings.service.poll_interval,
                    database=events_path(self.root),
                )
                self._stack.callback(feed.close)
                client = MqttClient(options)
                await self._stack.enter_async_context(client)
                contracts = PlatformContracts(
                    feed, ledger, self.deployments(), artifacts=self.settings.path("artifacts")
                )
                await contracts.look()
                shadow.service.add_listener(feed.shadow_changed)
                interval = self.settings.web.dashboard_interval
                task = asyncio.create_task(
                    _serve_all(feed.run(client), contracts.watch(interval)),
                    name="platform events",
                )
                self._stack.push_async_callback(_cancel, task)
                self._interop = RunningInterop(feed, client, task)
        return self._interop

    def deployments(self) -> DeploymentBook:
        """The deployment book of the data directory (``<home>/deployments.sqlite``).

        Example: ``Registry.find(await platform.ledger(), platform.deployments())``.
        """
        self._check_open()
        if self._book is None:
            from pervasive.contracts import DeploymentBook

            book = DeploymentBook(self.settings.path("deployments.sqlite"))
            self._stack.callback(book.close)
            self._book = book
        return self._book

    async def sale_orders(self, deployer: Signer | None = None) -> SaleOrderFactory:
        """The sale-order factory of paper 004 on this chain, deployed when missing.

        The deployer is ``deployer``, else development account 0 on the embedded and
        anvil chains; on another network without ``deployer`` a missing factory is
        :class:`~pervasive.errors.NotFound` (the first seller's key deploys it).

        Example: ``order = await (await platform.sale_orders()).with_signer(seller).create(...)``.
        """
        from pervasive.contracts import SaleOrderFactory

        ledger = await self.ledger()
        artifacts = self.settings.path("artifacts")
        async with self._lock("sale_orders"):
            if deployer is None and ledger.kind == "rpc":
                return await SaleOrderFactory.find(ledger, self.deployments(), artifacts=artifacts)
            signer = deployer or ledger.dev_signer(0)
            factory = await SaleOrderFactory.open(
                ledger, signer, artifacts=artifacts, book=self.deployments()
            )
        return factory

    async def oracle_hub(self) -> OracleHub:
        """The oracle hub of paper 001 on this chain (``pervasive oracle init`` deploys it).

        :class:`~pervasive.errors.NotFound` saying to run ``pervasive oracle init`` when
        this directory has not deployed one.

        Example: ``hub = await platform.oracle_hub(); await hub.query_status(1)``.
        """
        from pervasive.contracts.oracle_hub import OracleHub

        return await OracleHub.find(
            await self.ledger(), self.deployments(), artifacts=self.settings.path("artifacts")
        )

    async def gateway(self) -> Gateway:
        """The devices' JSON-RPC gateway in front of this platform's ledger, serving.

        HTTPS on ``[gateway] host/port`` with a server certificate of the platform CA;
        devices present their certificates of the same CA and act in the role the role
        book (``<root>/gateway/roles.json``, ``pervasive gateway role``) gives them. A
        warehouse reaches only the orders of :meth:`sale_orders`' factory;
        :data:`OPERATOR_IDENTITY` holds the ``operator`` role (this directory's commands
        borrow an embedded chain held by ``pervasive up`` through it).

        Example: ``url = (await platform.gateway()).url``.
        """
        async with self._lock("gateway"):
            self._check_open()
            if self._gateway is None:
                from pervasive.gateway import FILE_RECHECK, Gateway, RoleBook, roles_file

                roles = RoleBook.open(roles_file(self.root), recheck=FILE_RECHECK)
                if roles.role_of(OPERATOR_IDENTITY) is None:
                    roles.assign(OPERATOR_IDENTITY, "operator")
                gateway = await Gateway.start(
                    await self.ledger(),
                    self.authority,
                    self.settings.gateway,
                    roles=roles,
                    orders=self.order_check(),
                )
                self._stack.push_async_callback(gateway.close)
                self._gateway = gateway
        return self._gateway

    async def web(self, *, events: Path | None = None) -> WebServer:
        """The sellers' and buyers' web app with the live dashboard, serving.

        On ``[web] host/port``; sellers and buyers sign in with the keystore's accounts
        (``<home>/keystore``); the dashboard follows this platform's shadow service, CA
        and chain (the sale orders and agreements recorded in :meth:`deployments`), and
        streams the CloudEvents of ``events`` (default: the data directory's one log,
        ``<root>/interop/events.sqlite``; a demo names its own).

        Example: ``print((await platform.web()).url + "/dashboard")``.
        """
        async with self._lock("web"):
            self._check_open()
            if self._web is None:
                from pervasive.chain import Keystore
                from pervasive.interop import EventStore, events_path
                from pervasive.web import (
                    DashboardFeed,
                    KeystoreWarehouses,
                    WebContext,
                    WebServer,
                    cloudevents_routes,
                    create_app,
                    dashboard_routes,
                )

                ledger = await self.ledger()
                shadow = await self.shadow()
                feed = DashboardFeed(
                    ledger,
                    authority=self.authority,
                    shadows=shadow.service.store,
                    book=self.deployments(),
                    artifacts=self.settings.path("artifacts"),
                    interval=self.settings.web.dashboard_interval,
                )
                shadow.service.add_listener(feed.shadow_changed)
                keystore = Keystore(self.settings.path("keystore"))
                events_file = events or events_path(self.root)
                events_file.parent.mkdir(parents=True, exist_ok=True)
                log = EventStore(events_file)
                self._stack.callback(log.close)
                context = WebContext.build(
                    self.settings, ledger, keystore=keystore, book=self.deployments(),
                    warehouses=KeystoreWarehouses(keystore),
                    dashboard=dashboard_routes(feed, cloudevents=log),
                    cloudevents=cloudevents_routes(log),
                )  # fmt: skip
                self._stack.callback(context.close)
                await feed.start()
                server = await WebServer.start(create_app(context), self.settings.web)
                self._stack.push_async_callback(server.close)
                # the feed ends first: open dashboard streams then let the server stop at once
                self._stack.push_async_callback(feed.close)
                self._web = server
        return self._web

    def order_check(self) -> OrderCheck:
        """Is an address a sale order of :meth:`sale_orders`' factory? (for the gateway)

        The factory is looked up on first need and again until one is deployed; before
        that nothing is a sale order.
        """
        from pervasive.errors import NotFound

        found: list[SaleOrderFactory] = []

        async def is_order(address: str) -> bool:
            if not found:
                try:
                    found.append(await self.sale_orders())
                except NotFound:
                    return False
            return await found[0].is_order(address)

        return is_order

    async def start(self, *parts: Part) -> Self:
        """Build and start ``parts`` now (dependencies first); ``start()`` alone starts none.

        On an error the parts started so far are stopped before it propagates.

        Example: ``await platform.start("ledger", "broker", "shadow")``.
        """
        try:
            for part in parts:
                if part == "authority":
                    _ = self.authority
                elif part == "ledger":
                    await self.ledger()
                elif part == "broker":
                    await self.broker()
                elif part == "shadow":
                    await self.shadow()
                elif part == "interop":
                    await self.interop()
                elif part == "gateway":
                    await self.gateway()
                elif part == "web":
                    await self.web()
                else:
                    raise ConfigError(f"no platform part {part!r}; choose ledger, authority, "
                                      "broker, shadow, interop, gateway or web")  # fmt: skip
        except BaseException:
            await self.stop()
            raise
        return self

    async def stop(self) -> None:
        """Stop every part built so far, the last built first; safe to call twice.

        Every part is stopped even when stopping another raises; the first such error
        propagates afterwards.
        """
        self._stopped = True
        self._authority = self._ledger = self._broker = self._shadow = self._interop = None
        self._book = self._gateway = self._web = None
        await self._stack.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- what runs -------------------------------------------------------------

    def run_record(self) -> RunRecord:
        """Every part built so far as :class:`Endpoint` s, with the credential paths.

        What ``pervasive up`` writes to ``<home>/run.json`` and prints.

        Example: ``[e.address for e in platform.run_record().endpoints]``.
        """
        pid = os.getpid()
        endpoints: list[Endpoint] = []
        credentials: dict[str, str] = {}
        if self._ledger is not None:
            endpoints.append(_chain_endpoint(self._ledger, self.settings, pid))
        if self._authority is not None:
            ca = self._authority
            endpoints.append(
                Endpoint("ca", "x509", str(ca.directory), pid=pid,
                         detail="pervasive device register <id> issues device credentials")
            )  # fmt: skip
            credentials["CA certificate"] = str(ca.ca_file)
            credentials["CRL"] = str(ca.crl_file)
        if self._broker is not None:
            broker = self._broker
            host, port = broker.host, broker.port
            broker_pid = getattr(broker, "pid", None) or pid
            kind = "mosquitto" if broker_pid != pid else "embedded"
            endpoints.append(
                Endpoint("broker", kind, f"mqtts://{host}:{port}", host=host, port=port,
                         pid=broker_pid, detail="TLS 1.2, client certificate of the CA")
            )  # fmt: skip
        if self._shadow is not None:
            options = self._shadow.client.options
            endpoints.append(
                Endpoint("shadow", "mqtt", "$aws/things/+/shadow/#", pid=pid,
                         detail=f"on the broker as {SHADOW_IDENTITY}; shadows in "
                         f"{self.settings.home / 'shadow.sqlite'}")
            )  # fmt: skip
            folder = options.credentials.cert_file.parent
            credentials[f"{SHADOW_IDENTITY} (cert.pem, key.pem, ca.pem)"] = str(folder)
        if self._gateway is not None:
            gateway = self._gateway
            endpoints.append(
                Endpoint("gateway", "json-rpc", gateway.url, host=self.settings.gateway.host,
                         port=gateway.port, pid=pid,
                         detail="HTTPS, client certificate of the CA; `pervasive gateway role`")
            )  # fmt: skip
        if self._web is not None:
            web = self._web
            endpoints.append(
                Endpoint("web", "http", web.url, host=self.settings.web.host, port=web.port,
                         pid=pid, detail=f"sellers and buyers; live dashboard {web.url}/dashboard;"
                         f" CloudEvents {web.url}/events")
            )  # fmt: skip
        return RunRecord(pid, str(self.settings.home), time.time(), tuple(endpoints), credentials)

    # -- options from the settings' sections --------------------------------

    def client_options(
        self,
        identity: str,
        *,
        port: int | None = None,
        credentials: ClientCredentials | None = None,
        **changes: Any,
    ) -> ClientOptions:
        """MQTT options for ``identity`` with the ``[mqtt]`` settings.

        ``credentials`` default to the files the platform CA issues ``identity`` (once,
        under ``<root>/mqtt``); ``port`` to this platform's broker's, else
        ``settings.mqtt_port``, else the broker of a ``pervasive up`` running from the
        data directory (its run file); ``changes`` override any other field
        (``outbox=``, ``max_inflight=``, ``manual_ack=``); the client id is always
        ``identity`` (the certificate's).

        Example: ``MqttClient(platform.client_options("svc:node.n1", outbox=path))``.
        """
        from pervasive.messaging import ClientOptions

        if port is None:
            port = self._broker.port if self._broker is not None else self.settings.mqtt_port
        port = port or self._running_broker_port()
        if not port:
            raise ConfigError(
                f"no broker port for {identity}: start `pervasive up`, or the platform's "
                "broker first, or set mqtt_port (PERVASIVE_MQTT_PORT)"
            )
        if credentials is None:
            credentials = self.authority.client_credentials(identity, self.root / "mqtt")
        # the [mqtt] settings a client applies (the others are the broker's limits)
        fields = {field.name for field in dataclasses.fields(ClientOptions)}
        tunables = {k: v for k, v in dataclasses.asdict(self.settings.mqtt).items() if k in fields}
        return ClientOptions(self.settings.mqtt_host, port, credentials, **{**tunables, **changes})

    def node_options(self, **changes: Any) -> NodeSettings:
        """An intermediate node's options: the ``[node]`` settings, then ``changes``.

        Example: ``platform.node_options(gap_timeout=2.0)``.
        """
        return dataclasses.replace(self.settings.node, **changes)

    def shadow_limits(self) -> ShadowSettings:
        """The shadow service's bounds: the ``[shadow]`` settings."""
        return self.settings.shadow

    # -- internals -------------------------------------------------------------

    def _running_broker_port(self) -> int:
        """The broker port of a live ``pervasive up`` from this data directory, else 0."""
        record = read_run_record(run_file(self.settings.home))
        if record is None or not pid_alive(record.pid):
            return 0
        ports = [e.port for e in record.endpoints if e.name == "broker" and e.port]
        return ports[0] if ports else 0

    def _lock(self, part: str) -> asyncio.Lock:
        return self._locks.setdefault(part, asyncio.Lock())

    def _check_open(self) -> None:
        if self._stopped:
            raise InvalidInput("this Platform was stopped; build a new one")

    def _unlock(self) -> str:
        password = self._password
        if callable(password):
            password = password()
        password = password or self.settings.password
        if not password:
            raise ConfigError(
                f"the CA in {self._pki} needs a password: set PERVASIVE_PASSWORD "
                "(or password in pervasive.toml)"
            )
        return password


def _chain_endpoint(ledger: Ledger, settings: Settings, pid: int) -> Endpoint:
    if ledger.url is None:
        state = settings.home / "chain" / "embedded.sqlite"
        return Endpoint("chain", ledger.kind, "in-process", pid=pid,
                        detail=f"chain id {ledger.chain_id}; state in {state}")  # fmt: skip
    parsed = urlsplit(ledger.url)
    return Endpoint(
        "chain", ledger.kind, ledger.url, host=parsed.hostname, port=parsed.port, pid=pid,
        detail=f"chain id {ledger.chain_id}; other commands: --backend rpc --rpc-url {ledger.url}",
    )  # fmt: skip


async def _serve_all(*parts: Coroutine[Any, Any, None]) -> None:
    """Run ``parts`` together until cancelled; the first to fail ends the others with it."""
    tasks = [asyncio.create_task(part) for part in parts]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
