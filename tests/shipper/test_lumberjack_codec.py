"""The Lumberjack frame codec: encoding, strict decoding, ACK rules (lumberjack.md §1)."""

from __future__ import annotations

import random
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shipper.outputs.lumberjack import codec
from shipper.outputs.lumberjack.codec import Ack, FrameDecoder, JsonData, KVData, ProtocolError, Window


def decode_all(data: bytes, chunks: list[int] | None = None, **kw: int) -> list[codec.Frame]:
    dec = FrameDecoder(**kw)  # type: ignore[arg-type]
    out: list[codec.Frame] = []
    if chunks is None:
        dec.feed(data)
        out += list(dec)
    else:
        pos = 0
        for n in chunks:
            dec.feed(data[pos : pos + n])
            out += list(dec)
            pos += n
        dec.feed(data[pos:])
        out += list(dec)
    assert dec.buffered == 0
    return out


def feed_ways(data: bytes) -> list[list[codec.Frame]]:
    """Whole, byte by byte, and in random chunks (the h11 habit)."""
    rnd = random.Random(len(data))
    chunks = []
    left = len(data)
    while left > 0:
        n = rnd.randint(1, 50)
        chunks.append(n)
        left -= n
    return [decode_all(data), decode_all(data, [1] * len(data)), decode_all(data, chunks)]


PAYLOADS = [b'{"a":1}', b'{"message":"h\xc3\xa9llo"}', b"{}" + b" " * 3000]


def test_window_and_json_frames_byte_layout() -> None:
    data = codec.encode_batch([b'{"x":1}', b'{"y":2}'], level=0)
    assert data[:6] == b"2W\x00\x00\x00\x02"
    assert data[6:16] == b"2J\x00\x00\x00\x01\x00\x00\x00\x07"
    assert data[16:23] == b'{"x":1}'
    assert data[23:33] == b"2J\x00\x00\x00\x02\x00\x00\x00\x07"


@pytest.mark.parametrize("level", [0, 1, 3, 9])
def test_batch_roundtrip_every_feeding(level: int) -> None:
    data = codec.encode_batch(PAYLOADS, level)
    for frames in feed_ways(data):
        assert frames == [Window(codec.V2, 3)] + [JsonData(i + 1, p) for i, p in enumerate(PAYLOADS)]


def test_compressed_batch_is_one_zlib_c_frame_after_an_uncompressed_w() -> None:
    data = codec.encode_batch(PAYLOADS, 3)
    assert data[:6] == b"2W\x00\x00\x00\x03"
    assert data[6:8] == b"2C"
    (length,) = struct.unpack(">I", data[8:12])
    assert len(data) == 12 + length
    # RFC 1950 zlib: Python's decompress with the default wbits accepts it.
    inner = zlib.decompress(data[12:])
    assert inner == codec.encode_json_frames(PAYLOADS)


def test_sequences_restart_at_one_every_window() -> None:
    a = decode_all(codec.encode_batch([b"{}"] * 3, 0) + codec.encode_batch([b"{}"] * 2, 0))
    assert [f.seq for f in a if isinstance(f, JsonData)] == [1, 2, 3, 1, 2]


def test_empty_window_is_never_encoded() -> None:
    with pytest.raises(ValueError):
        codec.encode_batch([], 3)


def test_nested_compressed_frames_and_split_windows() -> None:
    inner = codec.encode_compressed(codec.encode_json(1, b'{"a":1}'), 1)
    outer = codec.encode_compressed(inner + codec.encode_json(2, b'{"b":2}'), 6)
    data = codec.encode_window(3) + outer + codec.encode_compressed(codec.encode_json(3, b"[]"), 2)
    for frames in feed_ways(data):
        assert frames == [
            Window(codec.V2, 3),
            JsonData(1, b'{"a":1}'),
            JsonData(2, b'{"b":2}'),
            JsonData(3, b"[]"),
        ]


def test_v1_data_frames() -> None:
    pairs = [(b"line", b"hello"), (b"host", b"h\xc3\xa9")]
    data = codec.encode_window(1, codec.V1) + codec.encode_kv(1, pairs)
    for frames in feed_ways(data):
        assert frames == [Window(codec.V1, 1), KVData(1, pairs)]


def test_v1_data_inside_compressed() -> None:
    data = codec.encode_window(1, codec.V1) + codec.encode_compressed(codec.encode_kv(7, [(b"k", b"v")]))
    assert decode_all(data) == [Window(codec.V1, 1), KVData(7, [(b"k", b"v")])]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"3W\x00\x00\x00\x01", "version"),
        (b"2X\x00\x00\x00\x01", "frame type"),
        (b"2A\x00\x00\x00\x01", "frame type"),  # an ACK is not something a client sends
        (b"2J\x00\x00\x00\x01\x00\x00\x00\x00", "json length"),
        (b"1J\x00\x00\x00\x01\x00\x00\x00\x02{}", "version 1"),
        (b"1D\x00\x00\x00\x01\x00\x00\x00\x00", "pair count"),
        (b"2C\x00\x00\x00\x04abcd", "zlib"),
        (codec.encode_compressed(codec.encode_window(1)), "window frame inside"),
        (codec.encode_compressed(codec.encode_json(1, b"{}")[:-1]), "incomplete"),
        (b"2C\x00\x00\x00\x06" + zlib.compress(b"2J")[:6], "truncated"),
        (b"2C" + struct.pack(">I", len(zlib.compress(b"")) + 2) + zlib.compress(b"") + b"xx", "trailing"),
    ],
)
def test_protocol_errors(data: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        decode_all(data)


def test_a_bad_version_byte_is_refused_before_the_frame_is_complete() -> None:
    dec = FrameDecoder()
    dec.feed(b"x")
    with pytest.raises(ProtocolError):
        dec.next_frame()


def test_limits() -> None:
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_all(codec.encode_window(11), max_window=10)
    with pytest.raises(ProtocolError, match="exceeds"):
        decode_all(codec.encode_json(1, b"x" * 100), max_payload=50)
    bomb = codec.encode_compressed(codec.encode_json(1, b"0" * 200_000), 9)
    with pytest.raises(ProtocolError, match="inflates beyond"):
        decode_all(bomb, max_inflated=100_000)


def test_incomplete_input_waits_for_more() -> None:
    data = codec.encode_batch([b'{"a":1}'], 0)
    dec = FrameDecoder()
    dec.feed(data[:-1])
    assert dec.next_frame() == Window(codec.V2, 1)
    assert dec.next_frame() is None
    dec.feed(data[-1:])
    assert dec.next_frame() == JsonData(1, b'{"a":1}')


def test_decoder_can_read_acks_when_asked() -> None:
    assert decode_all(codec.encode_ack(5), accept_acks=True) == [Ack(codec.V2, 5)]  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=20),
    st.integers(0, 9),
    st.lists(st.integers(1, 64), max_size=40),
)
def test_roundtrip_property(payloads: list[bytes], level: int, chunks: list[int]) -> None:
    data = codec.encode_batch(payloads, level)
    frames = decode_all(data, chunks)
    assert frames[0] == Window(codec.V2, len(payloads))
    assert [f.payload for f in frames[1:] if isinstance(f, JsonData)] == payloads


# -- ACKs ----------------------------------------------------------------------------------


def test_ack_reader_in_chunks() -> None:
    r = codec.AckReader()
    data = codec.encode_ack(0) + codec.encode_ack(2) + codec.encode_ack(5)
    got: list[int] = []
    for i in range(len(data)):
        got += r.feed(data[i : i + 1])
    assert got == [0, 2, 5]
    assert r.buffered == 0


@pytest.mark.parametrize("data", [b"1A\x00\x00\x00\x01", b"2J\x00\x00\x00\x01", b"HTTP/1.1 400", b"2" + b"W"])
def test_ack_reader_rejects_foreign_frames(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        list(codec.AckReader().feed(data))


def test_an_ack_ahead_of_a_foreign_frame_in_one_read_still_counts() -> None:
    """A server that acknowledges a window and then writes garbage (both in one read): the
    window stays acknowledged (its events are not sent again), then the connection fails."""
    got: list[int] = []
    with pytest.raises(ProtocolError):
        for seq in codec.AckReader().feed(codec.encode_ack(100) + b"2Z\x00\x00\x00\x01"):
            got.append(seq)
    assert got == [100]


def test_window_ack_rules() -> None:
    w = codec.WindowAcks(5)
    assert not w.on_ack(0)  # keep-alive
    assert not w.on_ack(2)  # partial
    assert not w.on_ack(0)  # keep-alive after a partial keeps the progress
    assert w.acked == 2
    assert w.on_ack(5)
    assert w.done
    w2 = codec.WindowAcks(5)
    with pytest.raises(ProtocolError, match="invalid sequence"):
        w2.on_ack(6)
