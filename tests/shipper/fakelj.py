"""A fault-injecting Lumberjack v2 receiver (Python), beside the real go-lumber one.

Each complete window gets an :class:`Act` from ``script(window_number)``: which ACKs to
send (``N`` = the window size), how long to wait between them, and what to do after
(stay, close, stall, write garbage). Windows are numbered across connections from 0.
Every received event is recorded, ACKed or not, so duplicates are visible to the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any

import attrs
import orjson

from shipper.outputs.lumberjack import codec

N = -1  # placeholder for "the window size" in Act.acks


@attrs.frozen
class Act:
    acks: tuple[int, ...] = (N,)
    delay: float = 0.0
    #: "stay", "close", "stall", "garbage", "too_big" (ACK N+1), "reset" (abort at once)
    then: str = "stay"
    #: Close the connection as soon as the W frame arrives (nothing of the window read).
    close_on_window: bool = False
    #: Close the connection after this many events of the window arrived (no ACK).
    close_after_events: int = 0
    #: ACK with the highest sequence number seen (Logstash) instead of the count (go-lumber).
    logstash_style: bool = False


ACK = Act()


class FakeLumberjack:
    def __init__(
        self,
        script: Callable[[int], Act] | None = None,
        *,
        read_chunk: int = 65536,
        read_delay: float = 0.0,
        ssl_context: ssl.SSLContext | None = None,
        rcvbuf: int = 0,
    ) -> None:
        self.rcvbuf = rcvbuf
        self.script = script or (lambda _n: ACK)
        self.read_chunk = read_chunk
        self.read_delay = read_delay
        self.ssl = ssl_context
        self.windows: list[list[bytes]] = []
        self.window_sizes: list[int] = []
        self.connections = 0
        self.protocol_errors: list[str] = []
        self.port = 0
        self._server: asyncio.AbstractServer | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- received data --------------------------------------------------------------------

    @property
    def payloads(self) -> list[bytes]:
        return [p for w in self.windows for p in w]

    def ids(self, key: str = "id") -> list[Any]:
        return [orjson.loads(p)[key] for p in self.payloads]

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.rcvbuf:
            # A small receive buffer makes a slow reader visible to the sender at once.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._handle, sock=sock, ssl=self.ssl, limit=16384)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for t in list(self._tasks):
                t.cancel()
            for t in list(self._tasks):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
            await self._server.wait_closed()

    def start_thread(self) -> None:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            loop.run_until_complete(self.start())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop())
            loop.close()

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        assert ready.wait(10)

    def stop_thread(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    def __enter__(self) -> FakeLumberjack:
        self.start_thread()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_thread()

    # -- connection -------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        dec = codec.FrameDecoder()
        size = 0
        seqs: list[int] = []
        events: list[bytes] = []
        try:
            while True:
                data = await reader.read(self.read_chunk)
                if not data:
                    return
                if self.read_delay:
                    await asyncio.sleep(self.read_delay)
                dec.feed(data)
                for frame in dec:
                    if isinstance(frame, codec.Window):
                        size, seqs, events = frame.size, [], []
                        act = self.script(len(self.windows))
                        if act.close_on_window:
                            self.windows.append([])
                            self.window_sizes.append(size)
                            await self._hang_up(reader, writer)
                            return
                    elif isinstance(frame, codec.JsonData):
                        if not size:
                            raise codec.ProtocolError("data frame outside a window")
                        seqs.append(frame.seq)
                        events.append(frame.payload)
                        cut = self.script(len(self.windows)).close_after_events
                        if cut and len(events) == cut < size:
                            self.windows.append(list(events))
                            self.window_sizes.append(size)
                            await self._hang_up(reader, writer)
                            return
                        if len(events) == size:
                            done = await self._complete(writer, size, seqs, events)
                            size = 0
                            if done is None:
                                await self._hang_up(reader, writer)
                            if not done:
                                return
                    else:
                        raise codec.ProtocolError(f"unexpected frame {frame!r}")
        except codec.ProtocolError as exc:
            self.protocol_errors.append(str(exc))
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()
            self._tasks.discard(task)

    async def _hang_up(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Close like a server that stops: the ACKs already written go out before the FIN,
        and what the client still sends is read and dropped (an abrupt close with unread
        data would reset the connection and could destroy those ACKs in flight)."""
        if writer.can_write_eof():
            writer.write_eof()
        with contextlib.suppress(OSError, TimeoutError):
            async with asyncio.timeout(10):
                while await reader.read(65536):
                    pass

    async def _complete(
        self, writer: asyncio.StreamWriter, size: int, seqs: list[int], events: list[bytes]
    ) -> bool | None:
        """Answer a complete window: True to go on, False to drop the connection, None to
        hang up gracefully."""
        act = self.script(len(self.windows))
        self.windows.append(list(events))
        self.window_sizes.append(size)
        full = max(seqs) if act.logstash_style else size
        for a in act.acks:
            if act.delay:
                await asyncio.sleep(act.delay)
            writer.write(codec.encode_ack(full if a == N else a))
            await writer.drain()
        if act.then == "stay":
            return True
        if act.then == "too_big":
            writer.write(codec.encode_ack(size + 1))
            await writer.drain()
            await asyncio.sleep(60)
        elif act.then == "garbage":
            writer.write(b"2Z\x00\x00\x00\x01")
            await writer.drain()
            await asyncio.sleep(60)
        elif act.then == "stall":
            await asyncio.sleep(3600)
        elif act.then == "close":
            return None
        return False
