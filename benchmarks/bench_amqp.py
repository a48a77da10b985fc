"""AMQP decoder throughput: a synthesized capture of 200,000+ AMQP transactions over many
connections -- publishes (JSON bodies with content properties and a headers table),
deliveries and their acknowledgements, basic.get answered by a message -- decoded with
protocols.decoder.Decoder through feed_many.
Run: python benchmarks/bench_amqp.py [--send-request]"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import amqpwire as w
from benchmarks.synth import Conversation, decode_timed, interleave
from protocols.decoder import Decoder
from protocols.registry import build_plugins, default_config

CONNECTIONS = 400
ROUNDS = 130  # 4 transactions a round: 208,000 transactions


def frames() -> list[tuple[int, bytes]]:
    convs = []
    for c in range(CONNECTIONS):
        conv = Conversation(
            (f"10.1.{c // 250}.{c % 250 + 1}", 20000 + c),
            ("10.9.0.1", 5672),
            ts=1_700_000_000_000_000_000 + c * 1000,
        )
        conv.handshake()
        for side, data in w.handshake_exchange():
            conv.send(side, data, ack=False)
        for i in range(ROUNDS):
            body = json.dumps(
                {"order": i, "customer": f"c{c}", "items": [1, 2, 3], "total": 12.5 + i}
            ).encode()
            props = {
                "content_type": "application/json",
                "delivery_mode": 2,
                "message_id": f"m-{c}-{i}",
                "timestamp": 1_700_000_000 + i,
                "headers": {"tenant": f"t{c % 7}", "attempt": i % 3, "trace": {"id": f"{c:04x}{i:06x}"}},
            }
            conv.send(0, w.basic_publish(1, "orders", "order.created", body, **props), ack=False)
            conv.send(
                1, w.basic_deliver(2, "ctag-1", i + 1, "orders", "order.created", body, **props), ack=False
            )
            conv.send(0, w.basic_ack(2, i + 1), ack=False)
            conv.send(0, w.basic_get(3, "audit"), ack=False)
            conv.send(
                1,
                w.basic_get_ok(3, i + 1, "orders", "audit", 0, body, content_type="application/json"),
                ack=False,
            )
        conv.close()
        convs.append(conv.frames)
    return list(interleave(convs))


def main() -> None:
    send = "--send-request" in sys.argv
    t0 = time.perf_counter()
    pkts = frames()
    print(f"synthesized {len(pkts):,} packets in {time.perf_counter() - t0:.1f}s")
    cfg = default_config("amqp", send_request=send, send_response=send)
    dec = Decoder(build_plugins({"amqp": cfg}))
    n, _first, dt = decode_timed(dec, [(ts, 1, frame, len(frame)) for ts, frame in pkts])
    assert n == CONNECTIONS * ROUNDS * 4, (n, dec.stats)
    label = "amqp (send_request/send_response)" if send else "amqp"
    print(f"{label}: {n:,} transactions, {len(pkts):,} packets in {dt:.2f}s")
    print(f"{label}: {n / dt:,.0f} transactions/s, {len(pkts) / dt:,.0f} packets/s")


if __name__ == "__main__":
    main()
