"""Packetbeat's Redis capture gives what Packetbeat gives (system test 0022).

redis_one_transaction.pcap (tshark -d tcp.port==6380,redis): 127.0.0.1:32810 sends
``*3 $6 lindex $4 test $1 1`` (33 bytes) at 1423845110.746081; 127.0.0.1:6380 answers
``$6 hello1`` (12 bytes) at 1423845110.746547.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import decode_file, shared_pcap

START = 1_423_845_110_746_081_000
END = 1_423_845_110_746_547_000


def decode(**opts: Any) -> list[dict[str, Any]]:
    return decode_file(shared_pcap("redis_one_transaction"), {"redis": {"ports": [6380], **opts}})


def test_one_transaction_field_by_field() -> None:
    events = decode()
    assert len(events) == 1
    evt = events[0]
    assert evt["type"] == "redis"
    assert evt["status"] == "OK"
    assert evt["method"] == "LINDEX"
    assert evt["resource"] == "test"
    assert evt["query"] == "lindex test 1"
    assert evt["redis"] == {"return_value": "hello1"}
    assert evt["event"] == {"start": START, "end": END, "action": "redis.lindex"}
    assert evt["@timestamp"] == START
    assert evt["source"] == {"ip": "127.0.0.1", "port": 32810, "bytes": 33}
    assert evt["destination"] == {"ip": "127.0.0.1", "port": 6380, "bytes": 12}
    assert evt["network"] == {"transport": "tcp", "protocol": "redis"}
    assert evt["related"] == {"ip": ["127.0.0.1"]}
    assert "error" not in evt


@pytest.mark.parametrize(
    ("send_request", "send_response"), [(False, False), (True, False), (False, True), (True, True)]
)
def test_send_options(send_request: bool, send_response: bool) -> None:
    events = decode(send_request=send_request, send_response=send_response)
    assert len(events) == 1
    evt = events[0]
    if send_request:
        assert evt["request"] == "lindex test 1"
    else:
        assert "request" not in evt
    if send_response:
        assert evt["response"] == "hello1"
    else:
        assert "response" not in evt


def test_default_port_sees_nothing() -> None:
    # The server listens on 6380; the shipped config watches 6379 only.
    events = decode_file(shared_pcap("redis_one_transaction"), {"redis": {}})
    assert events == []
