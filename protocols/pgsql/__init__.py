"""PostgreSQL decoder: message parser, request/response pairing, event fields."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.common.sessions import SessionTable
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
        self.sessions: SessionTable[Session] = SessionTable(
            Session, MAX_SESSIONS, stats, "pgsql.sessions_evicted"
        )

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return PgsqlHandler(self, conn)

    def session(self, conn: ConnInfo) -> Session:
        return self.sessions.get(conn)

    def end_session(self, conn: ConnInfo) -> None:
        self.sessions.end(conn)

    def tick(self, ts: int) -> list[Any]:
        return self.sessions.expire(ts - SESSION_TIMEOUT_NS)

    def to_event(self, txn: PgsqlTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = PgsqlPlugin
__all__ = ["PLUGIN", "PgsqlConfig", "PgsqlPlugin"]
