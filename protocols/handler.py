"""The seams between the transport layer and the protocol decoders.

* ``ConnInfo``: who talks to whom on one connection, oriented client → server.
* ``ConnectionHandler``: one per TCP connection; it is fed reassembled bytes and
  *returns* finished transactions (no callbacks).
* ``Plugin``: one per enabled protocol; owns the config, makes handlers, turns
  transactions into event dicts, and handles UDP datagrams for datagram protocols.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, ClassVar, Final

from protocols.common.config import ProtocolConfig
from protocols.net import ip_to_str
from protocols.stats import Counters

#: Directions of a connection once oriented.
FROM_CLIENT: Final = 0
FROM_SERVER: Final = 1

NS: Final = 1_000_000_000


class ConnInfo:
    """Endpoints of one connection (or one UDP exchange), client side first."""

    __slots__ = ("client_ip", "client_port", "conn_id", "server_ip", "server_port", "transport")

    def __init__(
        self,
        client_ip: str,
        client_port: int,
        server_ip: str,
        server_port: int,
        transport: str = "tcp",
        conn_id: int = 0,
    ) -> None:
        self.client_ip = client_ip
        self.client_port = client_port
        self.server_ip = server_ip
        self.server_port = server_port
        self.transport = transport
        self.conn_id = conn_id

    def endpoints(self, direction: int) -> tuple[str, int, str, int]:
        """(src ip, src port, dst ip, dst port) for a message sent in ``direction``."""
        if direction == FROM_CLIENT:
            return self.client_ip, self.client_port, self.server_ip, self.server_port
        return self.server_ip, self.server_port, self.client_ip, self.client_port

    def __repr__(self) -> str:
        return f"ConnInfo({self})"

    def __str__(self) -> str:
        return (
            f"{self.transport} {self.client_ip}:{self.client_port} -> "
            f"{self.server_ip}:{self.server_port} #{self.conn_id}"
        )


#: Addresses as text, shared by the connections of a host (a server's address above all).
_ip_str = functools.lru_cache(maxsize=4096)(ip_to_str)


class LazyConnInfo(ConnInfo):
    """A TCP connection's endpoints, made into strings when first read: a connection
    waiting for its response needs them only once its transaction is published. ``key``
    is the tracker's (source address bytes, port, destination bytes, port).

    Here rather than in ``protocols.tcp``: the tracker is compiled where a C compiler is
    present (mypyc), and a compiled class cannot fill its slots on first read."""

    __slots__ = ("_flipped", "_key")

    def __init__(self, key: tuple[Any, ...], flipped: bool, conn_id: int) -> None:
        self._key = key
        self._flipped = flipped
        self.transport = "tcp"
        self.conn_id = conn_id

    def __getattr__(self, name: str) -> Any:
        # Called only for a slot not set yet.
        if name not in ("client_ip", "client_port", "server_ip", "server_port"):
            raise AttributeError(name)
        src, sport, dst, dport = self._key
        if self._flipped:
            src, sport, dst, dport = dst, dport, src, sport
        self.client_ip = _ip_str(src)
        self.client_port = sport
        self.server_ip = _ip_str(dst)
        self.server_port = dport
        return getattr(self, name)


class ConnectionHandler:
    """Per-connection protocol state. Subclasses override what they need."""

    __slots__ = ("conn", "plugin")

    def __init__(self, plugin: Plugin, conn: ConnInfo) -> None:
        self.plugin = plugin
        self.conn = conn

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        """In-order bytes of one direction; returns finished transactions."""
        raise NotImplementedError

    def on_gap(self, direction: int, nbytes: int) -> bool:
        """``nbytes`` were lost in ``direction``. Return True to drop the connection state."""
        return True

    def resync(self, direction: int, after_loss: bool) -> None:
        """Called on a new handler before any data: ``direction`` resumes at an unknown
        point, so its first bytes may be the middle of a message. Parsers should skip to
        a message start they can trust.

        ``after_loss``: an earlier handler dropped its state after bytes of ``direction``
        were lost; from the client, whole requests may be gone whose responses are still
        to come (pairing by order is unsure until the streams realign, see
        ``protocols.common.realign``). Otherwise the connection was picked up without
        its SYN: the TCP layer delivers server bytes sent before a request arrived ahead
        of that request, so they never pair with it."""

    def on_fin(self, direction: int, ts: int) -> list[Any]:
        """``direction`` finished sending (its FIN was reached in sequence)."""
        return []

    def on_close(self, reason: str) -> list[Any]:
        """The connection ends (``fin``, ``rst``, ``expired``, ``gap``, ``evicted``, ``flush``).

        Return every transaction that can still be completed, and open requests as
        unmatched where the protocol reports those.
        """
        return []


class Plugin:
    """One enabled protocol: config, handler factory, transaction → event."""

    name: ClassVar[str] = ""
    #: ``{"tcp"}``, ``{"udp"}`` or both.
    transports: ClassVar[frozenset[str]] = frozenset({"tcp"})
    config_class: ClassVar[type[ProtocolConfig]] = ProtocolConfig
    #: Ports from the shipped ``packetbeat.yml`` (a protocol without ports sees nothing).
    default_ports: ClassVar[tuple[int, ...]] = ()

    def __init__(self, config: ProtocolConfig, stats: Counters) -> None:
        self.config = config
        self.stats = stats
        self.timeout_ns = int(config.transaction_timeout * NS)
        #: Packetbeat's debug selector of the protocol (``-d http``, ``-d '*'``): what it
        #: logs at debug level is guarded by ``debug``, read once here (the plugin is
        #: built after logging is set up), so a disabled selector costs one attribute test.
        self.log = logging.getLogger(self.name or "protocol")
        self.debug = self.log.isEnabledFor(logging.DEBUG)

    @property
    def ports(self) -> list[int]:
        return list(self.config.ports)

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        raise NotImplementedError

    def on_datagram(self, conn: ConnInfo, direction: int, data: bytes, ts: int) -> list[Any]:
        """UDP: one datagram; ``conn`` is oriented by the protocol's ports."""
        return []

    def on_icmp(self, ts: int, version: int, src: bytes, dst: bytes, message: bytes) -> list[Any]:
        """ICMP plugins only: one ICMPv4/ICMPv6 message."""
        return []

    def tick(self, ts: int) -> list[Any]:
        """Expire plugin-level state (UDP request caches) by capture time."""
        return []

    def flush(self) -> list[Any]:
        """End of input: everything still pending at plugin level."""
        return []

    def to_event(self, txn: Any) -> dict[str, Any]:
        raise NotImplementedError
