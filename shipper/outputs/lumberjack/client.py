"""An asyncio Lumberjack v2 client: one connection, up to ``pipelining`` windows in flight.

The wire rules live in :mod:`shipper.outputs.lumberjack.codec`; this module adds the socket, TLS,
the timeouts and the bookkeeping of windows in flight (go-lumber's AsyncClient does the
same). ACKs arrive in window order, so the head of the in-flight FIFO owns every ACK.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import ssl
import struct
import termios
import time
from collections import deque
from collections.abc import Callable, Sequence

from protocols.stats import Counters
from shipper.outputs.lumberjack import codec

#: Batches whose frames exceed this are compressed in a worker thread (zlib releases the GIL).
THREAD_COMPRESS_MIN = 16 * 1024
READ_SIZE = 64 * 1024
_TIOCOUTQ: int | None = getattr(termios, "TIOCOUTQ", None)


class LumberjackError(Exception):
    """Sending a window failed.

    ``acked`` events of that window (a prefix) were acknowledged before the failure;
    ``written`` says whether the window reached the socket at all (if so, the rest may
    have been received: resending it can duplicate events).
    """

    def __init__(self, message: str, acked: int = 0, written: bool = False, kind: str = "io") -> None:
        super().__init__(message)
        self.acked = acked
        self.written = written
        self.kind = kind

    def with_window(self, acked: int, written: bool) -> LumberjackError:
        return LumberjackError(str(self), acked, written, self.kind)


class ConnectError(LumberjackError):
    pass


class _InFlight:
    __slots__ = ("acks", "future", "written")

    def __init__(self, size: int, future: asyncio.Future[int]) -> None:
        self.acks = codec.WindowAcks(size)
        self.future = future
        self.written = False


def describe_os_error(exc: OSError) -> str:
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return exc.strerror or str(exc) or type(exc).__name__


def describe_ssl_error(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message or exc.reason}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {exc.reason or exc}"
    return str(exc) or type(exc).__name__


class LumberjackClient:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        timeout: float = 30.0,
        compression_level: int = 3,
        ssl_context: ssl.SSLContext | None = None,
        server_hostname: str | None = None,
        stats: Counters | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.level = compression_level
        self.ssl = ssl_context
        self.server_hostname = server_hostname
        self.stats = stats if stats is not None else Counters()
        self.clock = clock
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._inflight: deque[_InFlight] = deque()
        self._acks = codec.AckReader()
        self._write_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._read_task: asyncio.Task[None] | None = None
        self._last_progress = 0.0
        self._last_wbuf = 0
        self._error: LumberjackError | None = None
        self.connected_at = 0.0

    @property
    def address(self) -> str:
        h = f"[{self.host}]" if ":" in self.host else self.host
        return f"{h}:{self.port}"

    @property
    def connected(self) -> bool:
        return self._writer is not None and self._error is None

    @property
    def tls_version(self) -> str | None:
        if self._writer is None:
            return None
        obj = self._writer.get_extra_info("ssl_object")
        return obj.version() if obj is not None else None

    async def connect(self) -> None:
        """Dial (and handshake) within ``timeout``."""
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(
                    self.host,
                    self.port,
                    ssl=self.ssl,
                    server_hostname=(self.server_hostname or self.host) if self.ssl else None,
                    ssl_handshake_timeout=self.timeout if self.ssl else None,
                    limit=READ_SIZE,
                ),
                self.timeout,
            )
        except TimeoutError:
            raise ConnectError(
                f"dial {self.address}: timed out after {self.timeout:g}s", kind="timeout"
            ) from None
        except ssl.SSLError as exc:
            raise ConnectError(
                f"TLS handshake with {self.address} failed: {describe_ssl_error(exc)}", kind="tls"
            ) from exc
        except OSError as exc:
            raise ConnectError(f"dial {self.address}: {describe_os_error(exc)}", kind="connect") from exc
        self._error = None
        self._acks = codec.AckReader()
        self.connected_at = self.clock()
        self._last_progress = self.connected_at
        self._read_task = asyncio.get_running_loop().create_task(self._read_loop())

    async def send(self, payloads: Sequence[bytes]) -> int:
        """Send one window of JSON payloads and wait until all are acknowledged.

        Returns the window size; raises :class:`LumberjackError` carrying the acknowledged
        prefix otherwise. Never sends an empty window (§1.3).
        """
        n = len(payloads)
        if n == 0:
            return 0
        if self._error is not None or self._writer is None:
            raise self._error or LumberjackError(f"not connected to {self.address}")
        frames = codec.encode_json_frames(payloads)
        head = codec.encode_window(n)
        if self.level > 0:
            if len(frames) >= THREAD_COMPRESS_MIN:
                loop = asyncio.get_running_loop()
                body = await loop.run_in_executor(None, codec.encode_compressed, frames, self.level)
            else:
                body = codec.encode_compressed(frames, self.level)
        else:
            body = frames
        fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        w = _InFlight(n, fut)
        async with self._write_lock:
            if self._error is not None or self._writer is None:
                raise self._error or LumberjackError(f"not connected to {self.address}")
            self._inflight.append(w)
            self._wake.set()
            writer = self._writer
            w.written = True
            writer.writelines((head, body))  # one write for the whole window
            # The baseline for telling a slow reader from a dead one (see _write_progressed).
            self._last_wbuf = self._unsent()
            self._last_progress = self.clock()
            self.stats.incr("output.write_bytes", len(head) + len(body))
            try:
                await self._drain(writer)
            except LumberjackError as exc:
                self._fail(exc)
            except (OSError, RuntimeError) as exc:
                self._fail(LumberjackError(f"write to {self.address}: {exc}", kind="io"))
        self.stats.incr("output.sent", n)
        return await fut

    async def _drain(self, writer: asyncio.StreamWriter) -> None:
        """``drain`` with a timeout that counts from the last progress, not the start.

        A slow reader (back-pressure) keeps the write alive as long as bytes keep leaving.
        """
        transport = writer.transport
        while True:
            before = transport.get_write_buffer_size()
            try:
                await asyncio.wait_for(writer.drain(), self.timeout)
                self._last_progress = self.clock()
                return
            except TimeoutError:
                if transport.get_write_buffer_size() < before:
                    continue
                raise LumberjackError(
                    f"write to {self.address}: no progress for {self.timeout:g}s", kind="timeout"
                ) from None

    def _unsent(self) -> int:
        """Bytes written but not yet taken by the peer: our buffer plus the kernel's send
        queue (Linux ``TIOCOUTQ``), which only shrinks as the peer reads."""
        if self._writer is None:
            return 0
        size = self._writer.transport.get_write_buffer_size()
        sock = self._writer.get_extra_info("socket")
        if sock is not None and _TIOCOUTQ is not None:
            try:
                size += struct.unpack("i", fcntl.ioctl(sock.fileno(), _TIOCOUTQ, b"\0\0\0\0"))[0]
            except (OSError, ValueError):
                pass
        return size

    def _write_progressed(self) -> bool:
        """A slow reader (back-pressure) is progress too: bytes left since the last look."""
        size = self._unsent()
        last, self._last_wbuf = self._last_wbuf, size
        if size < last:
            self._last_progress = self.clock()
            return True
        return False

    async def _read_loop(self) -> None:
        reader = self._reader
        assert reader is not None
        read: asyncio.Task[bytes] | None = None
        loop = asyncio.get_running_loop()
        try:
            while True:
                if read is None:
                    read = loop.create_task(reader.read(READ_SIZE))
                timeout: float | None = None
                if self._inflight:
                    # Lumberjack has one timer: the time since the last ACK (keep-alive ACK 0
                    # and partial ACKs included) or write progress (lumberjack.md §1.3, §2).
                    timeout = self.timeout - (self.clock() - self._last_progress)
                    if timeout <= 0 and self._write_progressed():
                        continue
                    if timeout <= 0:
                        raise LumberjackError(
                            f"no ACK from {self.address} for {self.timeout:g}s", kind="timeout"
                        )
                self._wake.clear()
                wake = loop.create_task(self._wake.wait())
                try:
                    done, _ = await asyncio.wait(
                        {read, wake}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    wake.cancel()
                if read not in done:
                    continue
                data = read.result()
                read = None
                if not data:
                    raise LumberjackError(f"connection closed by {self.address}", kind="closed")
                self.stats.incr("output.read_bytes", len(data))
                for seq in self._acks.feed(data):
                    self._on_ack(seq)
        except asyncio.CancelledError:
            if read is not None:
                read.cancel()
            raise
        except codec.ProtocolError as exc:
            self.stats.incr("output.protocol_errors")
            self._fail(LumberjackError(f"protocol error from {self.address}: {exc}", kind="protocol"))
        except LumberjackError as exc:
            if exc.kind == "timeout":
                self.stats.incr("output.timeouts")
            self._fail(exc)
        except (OSError, ssl.SSLError) as exc:
            self._fail(LumberjackError(f"read from {self.address}: {exc}", kind="io"))
        finally:
            if read is not None and not read.done():
                read.cancel()

    def _on_ack(self, seq: int) -> None:
        if not self._inflight:
            if seq == 0:  # a late keep-alive: harmless
                return
            raise codec.ProtocolError(f"ACK {seq} with no window in flight")
        head = self._inflight[0]
        self._last_progress = self.clock()
        if seq == 0:
            self.stats.incr("output.keepalive_acks")
        elif seq < head.acks.size:
            self.stats.incr("output.partial_acks")
        if head.acks.on_ack(seq):
            self._inflight.popleft()
            if not head.future.done():
                head.future.set_result(head.acks.size)

    def _fail(self, exc: LumberjackError) -> None:
        """The connection is unusable: fail every window in flight and close.

        The head window keeps its acknowledged prefix; the windows behind it got nothing
        (libbeat async: ``msgRef.fail`` retries only the unacknowledged tail).
        """
        if self._error is None:
            self._error = exc
            if exc.kind != "local":
                self.stats.incr("output.connections_lost")
        while self._inflight:
            w = self._inflight.popleft()
            if not w.future.done():
                w.future.set_exception(exc.with_window(w.acks.acked, w.written))
        self._wake.set()
        if self._writer is not None:
            self._writer.transport.abort()

    async def close(self) -> None:
        if self._error is None:
            self._fail(LumberjackError(f"connection to {self.address} closed", kind="local"))
        task, self._read_task = self._read_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._writer = None
        self._reader = None
