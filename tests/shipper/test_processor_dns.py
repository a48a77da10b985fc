"""The ``dns`` processor against a real resolver on 127.0.0.1 (a dnspython server in a
thread answering PTR and A queries), with its success and failure caches."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import dns.message
import dns.rcode
import dns.rrset
import pytest

from protocols.stats import Counters
from shipper.pipeline.processors import Context, compile_list

ZONE_PTR = {"10.2.0.192.in-addr.arpa.": "gw.example.com.", "1.0.0.127.in-addr.arpa.": "localhost."}
ZONE_A = {"www.example.com.": ["192.0.2.80", "192.0.2.81"]}


class Resolver:
    """A UDP DNS server answering from the zones above; counts the queries it gets."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            q = dns.message.from_wire(data)
            r = dns.message.make_response(q)
            name = q.question[0].name.to_text()
            rdtype = dns.rdatatype.to_text(q.question[0].rdtype)
            self.queries.append(f"{rdtype} {name}")
            if rdtype == "PTR" and name in ZONE_PTR:
                r.answer.append(dns.rrset.from_text(name, 300, "IN", "PTR", ZONE_PTR[name]))
            elif rdtype == "A" and name in ZONE_A:
                r.answer.append(dns.rrset.from_text_list(name, 60, "IN", "A", ZONE_A[name]))
            else:
                r.set_rcode(dns.rcode.NXDOMAIN)
            self.sock.sendto(r.to_wire(), peer)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture(scope="module")
def resolver() -> Iterator[Resolver]:
    r = Resolver()
    yield r
    r.close()


def chain(resolver: Resolver, body: dict[str, Any], ctx: Context) -> Any:
    cfg = {"nameservers": [f"127.0.0.1:{resolver.port}"], "timeout": "1s", **body}
    p = compile_list([{"dns": cfg}], "processors", ctx, group=False)
    assert p is not None
    return p


def test_reverse_lookup_doc_example_with_cache(resolver: Resolver) -> None:
    now = [1000.0]
    ctx = Context(stats=Counters(), clock=lambda: now[0])
    p = chain(
        resolver,
        {
            "type": "reverse",
            "fields": {"source.ip": "source.domain", "destination.ip": "destination.domain"},
            "tag_on_failure": ["_dns_reverse_lookup_failed"],
        },
        ctx,
    )
    before = len(resolver.queries)
    evt = {"source": {"ip": "192.0.2.10"}, "destination": {"ip": "127.0.0.1"}}
    assert p(evt) == {
        "source": {"ip": "192.0.2.10", "domain": "gw.example.com"},
        "destination": {"ip": "127.0.0.1", "domain": "localhost"},
    }
    assert len(resolver.queries) == before + 2
    # Cached (the answer's TTL is 300 s): no new query.
    p({"source": {"ip": "192.0.2.10"}})
    assert len(resolver.queries) == before + 2
    assert ctx.stats["processors.dns.cache_hits"] == 1
    # A failure is tagged and cached for failure_cache.ttl (1 minute by default).
    out = p({"source": {"ip": "192.0.2.99"}})
    assert out == {"source": {"ip": "192.0.2.99"}, "tags": ["_dns_reverse_lookup_failed"]}
    p({"source": {"ip": "192.0.2.99"}})
    assert len(resolver.queries) == before + 3
    now[0] += 61
    p({"source": {"ip": "192.0.2.99"}})
    assert len(resolver.queries) == before + 4
    # After the answer's TTL the name is asked again.
    now[0] += 300
    p({"source": {"ip": "192.0.2.10"}})
    assert len(resolver.queries) == before + 5


def test_append_and_replace_actions(resolver: Resolver) -> None:
    ctx = Context()
    p = chain(resolver, {"type": "reverse", "fields": {"ip": "names"}}, ctx)
    assert p({"ip": "192.0.2.10", "names": "old"})["names"] == ["old", "gw.example.com"]
    p = chain(resolver, {"type": "reverse", "action": "replace", "fields": {"ip": "names"}}, ctx)
    assert p({"ip": "192.0.2.10", "names": "old"})["names"] == "gw.example.com"
    p = chain(resolver, {"type": "A", "fields": {"name": "addrs"}}, ctx)
    assert sorted(p({"name": "www.example.com"})["addrs"]) == ["192.0.2.80", "192.0.2.81"]


def test_unreachable_nameserver_is_a_tagged_failure() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))  # bound, never answers
    port = s.getsockname()[1]
    try:
        cfg = {
            "type": "reverse",
            "nameservers": [f"127.0.0.1:{port}"],
            "timeout": "50ms",
            "fields": {"ip": "name"},
            "tag_on_failure": ["dns_failed"],
        }
        p = compile_list([{"dns": cfg}], "processors", Context(), group=False)
        assert p is not None
        assert p({"ip": "192.0.2.10"}) == {"ip": "192.0.2.10", "tags": ["dns_failed"]}
    finally:
        s.close()
