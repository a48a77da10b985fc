"""MySQL decoder: packet parser, command/response pairing, event fields."""

from __future__ import annotations

from typing import Any, ClassVar

from protocols.common.sessions import SessionTable
from protocols.handler import NS, ConnectionHandler, ConnInfo, Plugin
from protocols.mysql.config import DEFAULT_PORTS, MysqlConfig
from protocols.mysql.fields import to_event
from protocols.mysql.transactions import MysqlHandler, MysqlTransaction, Session
from protocols.registry import register
from protocols.stats import Counters

#: Connections whose session (prepared statements, capabilities) is remembered.
MAX_SESSIONS = 65536


@register
class MysqlPlugin(Plugin):
    name = "mysql"
    transports = frozenset({"tcp"})
    config_class = MysqlConfig
    default_ports: ClassVar[tuple[int, ...]] = DEFAULT_PORTS

    config: MysqlConfig

    def __init__(self, config: MysqlConfig, stats: Counters) -> None:
        super().__init__(config, stats)
        self.sessions: SessionTable[Session] = SessionTable(
            lambda: Session(0), MAX_SESSIONS, stats, "mysql.sessions_evicted"
        )
        self.statement_timeout_ns = int(config.statement_timeout * NS)

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return MysqlHandler(self, conn)

    def session(self, conn: ConnInfo) -> Session:
        return self.sessions.get(conn)

    def end_session(self, conn: ConnInfo) -> None:
        self.sessions.end(conn)

    def tick(self, ts: int) -> list[Any]:
        return self.sessions.expire(ts - self.statement_timeout_ns)

    def to_event(self, txn: MysqlTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = MysqlPlugin
__all__ = ["PLUGIN", "MysqlConfig", "MysqlPlugin"]
