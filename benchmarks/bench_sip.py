"""SIP decoder throughput: a synthesized capture of 200,000+ packets, decoded with
protocols.decoder.Decoder. Calls (INVITE with SDP, 100, 180, 200 with SDP, ACK, BYE, 200)
and digest REGISTERs over UDP, one message per datagram; the same over TCP on many
connections, some with small segments (messages split over two or three) and some with
several messages per segment. SIP publishes every message, so transactions are messages.
Run: python benchmarks/bench_sip.py"""

from __future__ import annotations

import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synth import Conversation, decode_timed, interleave, ip_frame, udp_datagram
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

UDP_CALLS = 15_000  # 7 datagrams each
UDP_REGISTERS = 4_000  # 4 datagrams each
TCP_CONNECTIONS = 200
TCP_CALLS = 80  # per connection, 7 messages each
TS0 = 1_700_000_000_000_000_000


def sdp(ip: str, sess: int) -> bytes:
    return (
        f"v=0\r\no=user {sess} {sess + 1} IN IP4 {ip}\r\ns=call\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
        f"m=audio {10000 + sess % 50000} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
    ).encode()


def call(caller: tuple[str, int], callee: tuple[str, int], n: int, transport: str) -> list[tuple[int, bytes]]:
    """The seven messages of one call: (0 caller / 1 callee, bytes)."""
    cip, cport = caller
    sip, sport = callee
    cid = f"{n}-{cport}@{cip}"
    via = f"Via: SIP/2.0/{transport} {cip}:{cport};branch=z9hG4bK-{n}-{cport}"
    frm = f'From: "Caller {n}" <sip:caller{n}@example.com>;tag={n}a'
    to = f"To: <sip:callee{n}@{sip}:{sport}>"
    to_tag = f"{to};tag={n}b"
    contact_c = f"Contact: <sip:caller{n}@{cip}:{cport};transport={transport.lower()}>"
    contact_s = f"Contact: <sip:callee{n}@{sip}:{sport};transport={transport.lower()}>"

    def m(start: str, *headers: str, body: bytes = b"") -> bytes:
        extra = ["Content-Type: application/sdp"] if body else []
        head = "\r\n".join([start, *headers, *extra, f"Content-Length: {len(body)}"])
        return head.encode() + b"\r\n\r\n" + body

    uri = f"sip:callee{n}@{sip}:{sport}"
    common = (f"Call-ID: {cid}",)
    return [
        (0, m(f"INVITE {uri} SIP/2.0", via, "Max-Forwards: 70", frm, to, *common, "CSeq: 1 INVITE",
              contact_c, "User-Agent: bench/1.0", "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS",
              body=sdp(cip, n))),
        (1, m("SIP/2.0 100 Trying", via, frm, to, *common, "CSeq: 1 INVITE")),
        (1, m("SIP/2.0 180 Ringing", via, frm, to_tag, *common, "CSeq: 1 INVITE", contact_s)),
        (1, m("SIP/2.0 200 OK", via, frm, to_tag, *common, "CSeq: 1 INVITE", contact_s,
              "Supported: timer, replaces", body=sdp(sip, n + 7))),
        (0, m(f"ACK {uri} SIP/2.0", via.replace("z9hG4bK-", "z9hG4bK-a"), "Max-Forwards: 70", frm, to_tag,
              *common, "CSeq: 1 ACK")),
        (0, m(f"BYE {uri} SIP/2.0", via.replace("z9hG4bK-", "z9hG4bK-b"), "Max-Forwards: 70", frm, to_tag,
              *common, "CSeq: 2 BYE")),
        (1, m("SIP/2.0 200 OK", via.replace("z9hG4bK-", "z9hG4bK-b"), frm, to_tag, *common, "CSeq: 2 BYE")),
    ]  # fmt: skip


def register(client: tuple[str, int], server: tuple[str, int], n: int) -> list[tuple[int, bytes]]:
    cip, cport = client
    base = (
        f"REGISTER sip:{server[0]} SIP/2.0\r\nVia: SIP/2.0/UDP {cip}:{cport};branch=z9hG4bK-r{n}\r\n"
        f"From: <sip:user{n}@example.com>;tag=r{n}\r\nTo: <sip:user{n}@example.com>\r\n"
        f"Call-ID: reg-{n}@{cip}\r\nContact: <sip:user{n}@{cip}:{cport}>;expires=3600\r\nMax-Forwards: 70\r\n"
    )
    auth = (
        f'Authorization: Digest username="user{n}", realm="example.com", nonce="abc{n}", '
        f'uri="sip:{server[0]}", response="0123456789abcdef0123456789abcdef", algorithm=MD5\r\n'
    )
    reply = (
        f"Via: SIP/2.0/UDP {cip}:{cport};branch=z9hG4bK-r{n}\r\nFrom: <sip:user{n}@example.com>;tag=r{n}\r\n"
        f"To: <sip:user{n}@example.com>;tag=s{n}\r\nCall-ID: reg-{n}@{cip}\r\n"
    )
    return [
        (0, (base + "CSeq: 1 REGISTER\r\nContent-Length: 0\r\n\r\n").encode()),
        (1, ("SIP/2.0 401 Unauthorized\r\n" + reply + "CSeq: 1 REGISTER\r\n"
             f'WWW-Authenticate: Digest realm="example.com", nonce="abc{n}"\r\nContent-Length: 0\r\n\r\n').encode()),
        (0, (base + "CSeq: 2 REGISTER\r\n" + auth + "Content-Length: 0\r\n\r\n").encode()),
        (1, ("SIP/2.0 200 OK\r\n" + reply + "CSeq: 2 REGISTER\r\n"
             f"P-Associated-URI: <sip:user{n}@example.com>\r\nContent-Length: 0\r\n\r\n").encode()),
    ]  # fmt: skip


def udp_frames() -> list[tuple[int, bytes]]:
    out = []
    ts = TS0
    server = ("10.9.0.1", 5060)
    for n in range(UDP_CALLS + UDP_REGISTERS):
        client = (f"10.1.{n % 200}.{n % 250 + 1}", 5060 + n % 8)
        msgs = call(client, server, n, "UDP") if n < UDP_CALLS else register(client, server, n)
        for side, data in msgs:
            src, dst = (client, server) if side == 0 else (server, client)
            out.append((ts, ip_frame(src[0], dst[0], 17, udp_datagram(src[1], dst[1], data))))
            ts += 20_000
    return out


def tcp_conversation(c: int) -> list[tuple[int, bytes]]:
    client = (f"10.2.{c // 250}.{c % 250 + 1}", 40000 + c)
    server = ("10.9.0.2", 5060)
    # A third of the connections cut messages into 300-byte segments, a third send a whole
    # call side's burst in one segment, the rest one message per segment.
    kind = c % 3
    conv = Conversation(client, server, ts=TS0 + c * 1000, mss=300 if kind == 0 else 1448, step_ns=20_000)
    conv.handshake()
    for i in range(TCP_CALLS):
        msgs = call(client, server, c * 1000 + i, "TCP")
        if kind == 1:
            conv.send(0, msgs[0][1], ack=False)
            conv.send(1, msgs[1][1] + msgs[2][1], ack=False)
            conv.send(1, msgs[3][1], ack=False)
            conv.send(0, msgs[4][1] + msgs[5][1], ack=False)
            conv.send(1, msgs[6][1], ack=False)
        else:
            for side, data in msgs:
                conv.send(side, data, ack=False)
    return conv.close().frames


def frames() -> list[tuple[int, bytes]]:
    convs = [tcp_conversation(c) for c in range(TCP_CONNECTIONS)]
    convs.append(udp_frames())
    return list(interleave(convs))


def main() -> None:
    t0 = time.perf_counter()
    pkts = frames()
    print(f"synthesized {len(pkts):,} packets in {time.perf_counter() - t0:.1f}s")
    expected = UDP_CALLS * 7 + UDP_REGISTERS * 4 + TCP_CONNECTIONS * TCP_CALLS * 7
    dec = Decoder(build_plugins({"sip": default_config("sip")}))
    packets = [(ts, 1, frame, len(frame)) for ts, frame in pkts]
    # The synthesized capture stays in memory for the whole run (a capture file is read as it
    # goes): keep its quarter million tuples out of the collector's scans.
    gc.freeze()
    cpu0 = time.process_time()
    n, _first, dt = decode_timed(dec, packets)
    cpu = time.process_time() - cpu0
    assert n == expected, (n, expected, dec.stats)
    assert not any(k.startswith("sip.") for k in dec.stats), dec.stats
    print(f"sip: {n:,} messages (events), {len(pkts):,} packets in {dt:.2f}s")
    print(f"sip: {n / dt:,.0f} messages/s, {len(pkts) / dt:,.0f} packets/s")
    # On a shared machine the wall clock counts other processes' turns too.
    print(f"sip: {cpu:.2f}s CPU: {n / cpu:,.0f} messages/s, {len(pkts) / cpu:,.0f} packets/s of CPU time")


if __name__ == "__main__":
    main()
