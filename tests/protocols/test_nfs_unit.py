"""NFS decoder units: message decoding, record marking, pairing and expiry by capture time,
configuration and registration."""

from __future__ import annotations

from typing import Any

import pytest

from protocols.handler import FROM_CLIENT, FROM_SERVER, ConnInfo
from protocols.nfs import NfsPlugin
from protocols.nfs.config import NfsConfig
from protocols.nfs.parser import Call, OtherCall, RecordStream, Reply, RpcError, decode, plausible_header
from protocols.registry import Registry, build_plugins, default_config
from protocols.stats import Counters
from tests.protocols.nfs_wire import (
    MOUNT,
    auth_gss,
    auth_null,
    auth_sys,
    call,
    compound,
    denied_auth,
    denied_rpc_mismatch,
    op_putfh,
    op_read,
    op_sequence,
    prog_mismatch,
    record,
    reply,
    u32,
)

NS = 1_000_000_000


def plugin(**kw: Any) -> NfsPlugin:
    return NfsPlugin(NfsConfig(ports=[2049], **kw), Counters())


def test_defaults_and_registration() -> None:
    cfg = default_config("nfs")
    assert isinstance(cfg, NfsConfig)
    assert cfg.ports == [2049] and cfg.transaction_timeout == 60.0
    reg = Registry(build_plugins({"nfs": cfg}))
    assert reg.tcp_ports[2049].name == "nfs" and reg.udp_ports[2049].name == "nfs"
    assert reg.bpf_filter() == "port 2049"


def test_decode_call_auth_sys() -> None:
    msg = call(0xDEADBEEF, 3, b"\1" * 40, cred=auth_sys(7, 8, (8, 9), "host.example"))
    c = decode(msg, len(msg))
    assert isinstance(c, Call)
    assert (c.xid, c.vers, c.proc, c.flavor, c.opcode, c.size) == (0xDEADBEEF, 3, 3, 1, "LOOKUP", len(msg))
    assert c.cred == (12345, "host.example", 7, 8, [8, 9])
    assert c.nfs == {"version": 3, "opcode": "LOOKUP"}


@pytest.mark.parametrize(("cred", "flavor"), [(auth_null(), 0), (auth_gss(), 6)])
def test_decode_call_other_flavours(cred: bytes, flavor: int) -> None:
    c = decode(call(1, 1, cred=cred), 100)
    assert isinstance(c, Call) and c.flavor == flavor and c.cred is None


def test_decode_v4_compound() -> None:
    args = compound([op_sequence(), op_putfh(), op_read()], "tag", 1)
    c = decode(call(2, 1, args, vers=4), 200)
    assert isinstance(c, Call)
    assert c.nfs == {"version": 4, "tag": "tag", "minor_version": 1, "opcode": "READ"}


def test_decode_other_program_and_replies() -> None:
    o = decode(call(3, 1, prog=MOUNT), 60)
    assert isinstance(o, OtherCall) and o.prog == MOUNT
    r = decode(reply(3, u32(2)), 28)
    assert isinstance(r, Reply) and (r.accept, r.body, r.reject) == (0, 2, None)
    r = decode(prog_mismatch(4, 2, 4), 32)
    assert isinstance(r, Reply) and (r.accept, r.detail) == (2, (2, 4))
    r = decode(denied_auth(5, 13), 20)
    assert isinstance(r, Reply) and (r.reject, r.detail) == (1, (13,))
    r = decode(denied_rpc_mismatch(6, 2, 3), 24)
    assert isinstance(r, Reply) and (r.reject, r.detail) == (0, (2, 3))


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (b"\0" * 8, "short_message"),
        (u32(1) + u32(7) + b"\0" * 16, "bad_message_type"),
        (u32(1) + u32(1) + u32(2), "bad_reply_status"),
        (u32(1) + u32(1) + u32(0) + u32(0) + u32(0) + u32(9), "bad_accept_status"),
        (u32(1) + u32(1) + u32(1) + u32(5) + u32(0), "bad_reject_status"),
        (call(1, 1)[:30], "short_call"),
    ],
)
def test_decode_errors(msg: bytes, reason: str) -> None:
    with pytest.raises(RpcError) as info:
        decode(msg, len(msg))
    assert info.value.reason == reason


def test_record_stream_fragments_and_head_limit() -> None:
    stats = Counters()
    s = RecordStream(stats, 64, 1 << 20)
    body = call(1, 7, b"w" * 1000)
    wire = record(body, [10, 0, 500])
    recs = s.feed(wire[:7]) + s.feed(wire[7:600]) + s.feed(wire[600:])
    assert len(recs) == 1
    assert recs[0].size == len(body) and recs[0].truncated and recs[0].data == body[:64]
    assert s.pending == 0 and not s.in_record


def test_plausible_header() -> None:
    c = record(call(9, 1))
    assert plausible_header(c, 0) == -1
    assert plausible_header(c[:20], 0) == 24
    assert plausible_header(record(call(9, 1, prog=MOUNT)), 0) == 0
    assert plausible_header(record(reply(9)), 0) == -1


def _conv(plug: NfsPlugin) -> Any:
    return plug.new_handler(ConnInfo("10.0.0.1", 800, "10.0.0.2", 2049))


def test_expiry_on_capture_time_and_late_reply() -> None:
    plug = plugin()
    h = _conv(plug)
    assert h.on_data(FROM_CLIENT, record(call(1, 1)), 10 * NS) == []
    assert plug.tick(69 * NS) == []
    (t,) = plug.tick(71 * NS)
    e = plug.to_event(t)
    assert e["status"] == "NO_REPLY" and "end" not in e["event"] and "status" not in e["rpc"]
    assert e["@timestamp"] == 10 * NS and e["nfs"]["opcode"] == "GETATTR"
    assert h.on_data(FROM_SERVER, record(reply(1, u32(0))), 72 * NS) == []
    assert plug.stats["nfs.unmatched_replies"] == 1 and plug.stats["nfs.expired_calls"] == 1


def test_retransmission_and_reply_on_another_connection() -> None:
    plug = plugin()
    h1, h2 = _conv(plug), plug.new_handler(ConnInfo("10.0.0.1", 801, "10.0.0.2", 2049))
    h1.on_data(FROM_CLIENT, record(call(5, 3, b"\1" * 36)), 1 * NS)
    h2.on_data(FROM_CLIENT, record(call(5, 3, b"\1" * 36)), 2 * NS)  # the client reconnected
    (t,) = h2.on_data(FROM_SERVER, record(reply(5, u32(2))), 3 * NS)
    e = plug.to_event(t)
    assert (e["source"]["port"], e["nfs"]["status"], e["event"]["start"]) == (801, "NFSERR_NOENT", 2 * NS)
    assert plug.stats["nfs.retransmitted_calls"] == 1
    assert plug.flush() == []


def test_udp_pairs_by_content_not_direction() -> None:
    plug = plugin()
    info = ConnInfo("10.0.0.1", 900, "10.0.0.2", 2049, "udp")
    assert plug.on_datagram(info, FROM_CLIENT, call(8, 1), 1) == []
    (t,) = plug.on_datagram(info, FROM_SERVER, reply(8, u32(0)), 2)
    e = plug.to_event(t)
    assert e["network"] == {"transport": "udp", "protocol": "nfsv3"}
    assert (e["source"]["ip"], e["source"]["port"], e["destination"]["port"]) == ("10.0.0.1", 900, 2049)


def test_denied_reply_event() -> None:
    plug = plugin()
    h = _conv(plug)
    h.on_data(FROM_CLIENT, record(call(4, 1, cred=auth_gss())), 1)
    (t,) = h.on_data(FROM_SERVER, record(denied_auth(4, 14)), 2)
    e = plug.to_event(t)
    assert (e["status"], e["rpc"]["status"], e["event"]["outcome"]) == ("OK", "auth_error", "failure")
    assert e["error"]["message"] == ["RPCSEC_GSS_CTXPROBLEM"] and e["rpc"]["auth_flavor"] == "rpcsec_gss"


def test_reply_without_status_word() -> None:
    plug = plugin()
    h = _conv(plug)
    h.on_data(FROM_CLIENT, record(call(4, 1)), 1)
    (t,) = h.on_data(FROM_SERVER, record(reply(4)), 2)
    e = plug.to_event(t)
    assert "status" not in e["nfs"] and e["rpc"]["status"] == "success"
    assert plug.stats["nfs.short_replies"] == 1
