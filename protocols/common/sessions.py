"""Per-connection state that outlives a connection handler (prepared statements survive
idle expiry and gaps), bounded in count and age."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from protocols.handler import ConnInfo
from protocols.stats import Counters


class _Timed(Protocol):
    last_ts: int


S = TypeVar("S", bound=_Timed)


class SessionTable(Generic[S]):
    """Sessions keyed by the 4-tuple, least recently used first."""

    def __init__(self, make: Callable[[], S], capacity: int, stats: Counters, evicted: str) -> None:
        self.make = make
        self.capacity = capacity
        self.stats = stats
        self.evicted = evicted
        self.sessions: OrderedDict[tuple[str, int, str, int], S] = OrderedDict()

    @staticmethod
    def _key(conn: ConnInfo) -> tuple[str, int, str, int]:
        return (conn.client_ip, conn.client_port, conn.server_ip, conn.server_port)

    def get(self, conn: ConnInfo) -> S:
        key = self._key(conn)
        s = self.sessions.get(key)
        if s is None:
            if len(self.sessions) >= self.capacity:
                self.sessions.popitem(last=False)
                self.stats.incr(self.evicted)
            s = self.sessions[key] = self.make()
        else:
            self.sessions.move_to_end(key)
        return s

    def end(self, conn: ConnInfo) -> None:
        self.sessions.pop(self._key(conn), None)

    def expire(self, limit: int) -> list[Any]:
        """Forget sessions idle since before ``limit`` (capture time)."""
        sessions = self.sessions
        while sessions:
            key, s = next(iter(sessions.items()))
            if s.last_ts >= limit:
                break
            del sessions[key]
        return []

    def __len__(self) -> int:
        return len(self.sessions)
