"""``output.kafka`` throughput: encoded Packetbeat-sized events published through
:class:`shipper.outputs.kafka.KafkaOutput` (the pipeline's batches, default settings unless
told) to a local KRaft broker this script starts (tests/interop/kafka_broker.py), until
every record is acknowledged.

    python benchmarks/bench_kafka.py [--events 200000] [--compression gzip] [--key]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from protocols.stats import Counters
from shipper.agent.settings import build_settings
from shipper.outputs.base import EncodedEvent, OutputContext
from shipper.outputs.kafka import KafkaOutput
from tests.interop.kafka_broker import KafkaBroker


def events(n: int) -> list[EncodedEvent]:
    out = []
    for i in range(n):
        e = {
            "@timestamp": "2024-05-06T07:08:09.123Z",
            "@metadata": {"beat": "packetbeat", "type": "_doc", "version": "9.3.0"},
            "type": "http",
            "client": {"ip": f"10.0.{i % 250}.{i % 7}", "port": 40000 + i % 1000},
            "server": {"ip": "10.2.0.2", "port": 80},
            "url": {"path": f"/item/{i}", "full": f"http://shop.example/item/{i}"},
            "http": {"request": {"method": "GET"}, "response": {"status_code": 200, "bytes": 512}},
            "event": {"duration": 1234567, "kind": "event", "category": ["network"]},
            "network": {"transport": "tcp", "protocol": "http", "bytes": 900},
            "status": "OK",
        }
        out.append(EncodedEvent.from_event(e))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--compression", default="gzip")
    ap.add_argument("--key", action="store_true", help="key %{[client.ip]} (decodes every event)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        broker = KafkaBroker(Path(tmp))
        broker.start()
        try:
            body = {"hosts": [broker.bootstrap], "topic": "bench", "compression": args.compression}
            if args.key:
                body["key"] = "%{[client.ip]}"
            settings, _ = build_settings({"output": {"kafka": body}})
            out = KafkaOutput(settings.output_config(), OutputContext("b", "0", Counters(), Path(tmp)))
            evs = events(args.events)

            async def run() -> float:
                await out.publish(evs[:100])  # metadata, topic creation
                t0 = time.perf_counter()
                size = out.batch_size
                sem = asyncio.Semaphore(out.concurrency)

                async def one(chunk: list[EncodedEvent]) -> None:
                    async with sem:
                        assert await out.publish(chunk) == len(chunk)

                await asyncio.gather(*(one(evs[i : i + size]) for i in range(0, len(evs), size)))
                dt = time.perf_counter() - t0
                await out.close()
                return dt

            dt = asyncio.run(run())
            print(
                f"kafka output: {args.events} events, compression {args.compression}, key {args.key}: "
                f"{dt:.2f}s, {args.events / dt:,.0f} events/s"
            )
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
