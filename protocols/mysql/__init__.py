"""MySQL decoder: packet parser, command/response pairing, event fields."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, ClassVar

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
        self.sessions: OrderedDict[tuple[str, int, str, int], Session] = OrderedDict()
        self.statement_timeout_ns = int(config.statement_timeout * NS)

    def new_handler(self, conn: ConnInfo) -> ConnectionHandler:
        return MysqlHandler(self, conn)

    def session(self, conn: ConnInfo) -> Session:
        key = (conn.client_ip, conn.client_port, conn.server_ip, conn.server_port)
        s = self.sessions.get(key)
        if s is None:
            if len(self.sessions) >= MAX_SESSIONS:
                self.sessions.popitem(last=False)
                self.stats.incr("mysql.sessions_evicted")
            s = self.sessions[key] = Session(0)
        else:
            self.sessions.move_to_end(key)
        return s

    def end_session(self, conn: ConnInfo) -> None:
        self.sessions.pop((conn.client_ip, conn.client_port, conn.server_ip, conn.server_port), None)

    def tick(self, ts: int) -> list[Any]:
        limit = ts - self.statement_timeout_ns
        sessions = self.sessions
        while sessions:
            key, s = next(iter(sessions.items()))
            if s.last_ts >= limit:
                break
            del sessions[key]
        return []

    def to_event(self, txn: MysqlTransaction) -> dict[str, Any]:
        return to_event(self, txn)


PLUGIN = MysqlPlugin
__all__ = ["PLUGIN", "MysqlConfig", "MysqlPlugin"]
