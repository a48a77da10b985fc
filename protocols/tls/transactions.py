"""One TLS connection's handshake → one session report.

When a report is made follows Packetbeat (``protos/tls/tls.go``):

* each direction is parsed until its ChangeCipherSpec; once both sides have sent theirs
  the handshake is complete and the report goes out (``event.end`` = that moment);
* a FIN in either direction, or a gap in the stream, reports what was seen so far (no
  ``event.end``), and the connection's TLS state starts over after a gap;
* the handshake counts as established (``status: OK``) once the client has sent its
  ChangeCipherSpec;
* only one report per connection state, and only if something was seen (a hello, a
  certificate or an alert).

Beyond Packetbeat (which drops them): a connection that ends by RST, idles past
``transaction_timeout``, is evicted, or is still open at the end of the input reports its
handshake too.

Roles come from the content: the side that sent the ClientHello (or ClientKeyExchange) is
the client, even when the transport guessed the other way round.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnectionHandler, ConnInfo
from protocols.tls.parser import CLIENT, ENCRYPTED, FAILED, MIDSTREAM, SERVER, DirectionParser

if TYPE_CHECKING:
    from protocols.tls import TlsPlugin


class TlsSession:
    """What the event is built from."""

    __slots__ = ("client", "conn", "end", "established", "flipped", "server", "start")

    def __init__(
        self,
        conn: ConnInfo,
        flipped: bool,
        client: DirectionParser | None,
        server: DirectionParser | None,
        established: bool,
        start: int,
        end: int | None,
    ) -> None:
        self.conn = conn
        #: The transport's client is the TLS server.
        self.flipped = flipped
        self.client = client
        self.server = server
        self.established = established
        self.start = start
        self.end = end


class TlsHandler(ConnectionHandler):
    __slots__ = ("done", "end", "ignored", "parsers", "sent", "start")

    plugin: TlsPlugin

    def __init__(self, plugin: TlsPlugin, conn: ConnInfo) -> None:
        super().__init__(plugin, conn)
        self.parsers: list[DirectionParser | None] = [None, None]
        #: The directions that sent their ChangeCipherSpec.
        self.done = [False, False]
        #: Directions picked up after their handshake: nothing to read in them.
        self.ignored = [False, False]
        self.sent = False
        self.start: int | None = None
        self.end: int | None = None

    def on_data(self, direction: int, data: bytes, ts: int) -> list[Any]:
        if self.sent or self.done[direction] or self.ignored[direction]:
            return []  # encrypted from here on
        if self.start is None:
            self.start = ts
        parser = self.parsers[direction]
        if parser is None:
            parser = self.parsers[direction] = DirectionParser(self.plugin.stats)
        state = parser.feed(data)
        if state == FAILED:
            self.parsers[direction] = None  # start afresh with the next segment
        elif state == MIDSTREAM:
            self.ignored[direction] = True
            if not parser.has_info():
                self.parsers[direction] = None
            self.plugin.stats.incr("tls.midstream")
        elif state == ENCRYPTED:
            self.done[direction] = True
            if self.done[1 - direction]:
                self.end = ts
                return self._report()
        return []

    def on_fin(self, direction: int, ts: int) -> list[Any]:
        return self._report()

    def on_gap(self, direction: int, nbytes: int) -> bool:
        return True  # report (on_close) and start over

    def on_close(self, reason: str) -> list[Any]:
        return self._report()

    def _report(self) -> list[Any]:
        if self.sent:
            return []
        self.sent = True
        a, b = self.parsers
        if not ((a is not None and a.has_info()) or (b is not None and b.has_info())):
            self.parsers = [None, None]
            return []
        flipped = (a is not None and a.role == SERVER) or (b is not None and b.role == CLIENT)
        client_dir, server_dir = (FROM_SERVER, FROM_CLIENT) if flipped else (FROM_CLIENT, FROM_SERVER)
        assert self.start is not None
        session = TlsSession(
            self.conn,
            flipped,
            self.parsers[client_dir],
            self.parsers[server_dir],
            # As Packetbeat: established once the client has sent its ChangeCipherSpec (the
            # server's may come first: resumption, TLS 1.3).
            self.done[client_dir],
            self.start,
            self.end,
        )
        self.parsers = [None, None]
        return [session]
