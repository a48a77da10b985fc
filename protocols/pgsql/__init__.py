"""PostgreSQL decoder: message parser, request/response pairing, event fields."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

from protocols.handler import NS, ConnectionHandler, ConnInfo, Plugin
from protocols.pgsql.config import DEFAULT_PORTS, PgsqlConfig
from protocols.pgsql.fields import to_event
from protocols.pgsql.transactions import PgsqlHandler, PgsqlTransaction, Session
from protocols.registry import register
from protocols.stats import Counters

#: Connections whose session (named statements, encryption) is remembered.
MAX_SESSIONS = 65536
#: How long an idle session's named statements are kept (capture time).
SESSION_TIMEOUT_NS = 3600 * NS


@register
class PgsqlPlugin(Plugin):
    name = "pgsql"
    transports = frozenset({"tcp"})
    config_class = PgsqlConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: PgsqlConfig

    def __init__(self, config: PgsqlConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        self.sessions: OrderedDict[tuple[str, int, str, int], Session] = OrderedDict()

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return PgsqlHandler(self, conn)

    def session(self, conn: ConnInfo) -> Session:
        key = (conn.client_ip, conn.client_port, conn.server_ip, conn.server_port)
        s = self.sessions.get(key)
        if s is None:
            if len(self.sessions) >= MAX_SESSIONS:
                self.sessions.popitem(last=False)
                self.stats.incr("pgsql.sessions_evicted")
            s = self.sessions[key] = Session()
        else:
            self.sessions.move_to_end(key)
        return s

    def end_session(self, conn: ConnInfo) -> None:
        self.sessions.pop((conn.client_ip, conn.client_port, conn.server_ip, conn.server_port), None)

    def tick(self, ts: int) -> list[Any]:
        limit = ts - SESSION_TIMEOUT_NS
        sessions = self.sessions
        while sessions:
            key, s = next(iter(sessions.items()))
            if s.last_ts >= limit:
                break
            del sessions[key]
        return []

    def to_event(self, txn: PgsqlTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = PgsqlPlugin
__all__ = ["PLUGIN", "PgsqlConfig", "PgsqlPlugin"]
