"""Live SIP: sipp (Debian ``sip-tester``) as user agent client and server on 127.0.0.1, over
UDP and over TCP, running the scenarios in ``tests/sip/``:

* REGISTER challenged with 401 (digest, realm ``wirebeat.test``), sent again with
  credentials that the server checks (``verifyauth``), 200 OK with P-Associated-URI;
* a call: INVITE with an SDP offer, 100, 180, 200 with an SDP answer, ACK, then BYE and its
  200 written with compact header names (``v: f: t: i: m: l:``);
* a call refused with 486 Busy Here, and its ACK;
* a call cancelled while ringing: INVITE, 100, 180, CANCEL, 200 for the CANCEL, 487, ACK;
* over TCP, a client of this test against a sipp server: an OPTIONS sent in three segments,
  then two OPTIONS in one segment.

Captured on lo with tcpdump and decoded. sipp's ``-trace_msg`` log is an independent record
of every message each side sent (retransmissions included): every logged message must come
out as exactly one event, its ``event.original`` the logged bytes, and its fields as this
test reads them from the logged text with its own small parser (start line, Call-ID, CSeq,
From/To/Contact/Via, credentials, SDP).
"""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from capture import CaptureFile
from protocols.decoder import Decoder
from tests.helpers import make_decoder, need_tool, tcpdump
from tests.oracle.recordings import record_for_oracle

pytestmark = pytest.mark.integration

Live = tuple[list[dict[str, Any]], list["Run"], int, Decoder]

HOST = "127.0.0.1"
SCENARIOS = Path(__file__).resolve().parent.parent / "sip"
FLOWS = {
    "register": ["REGISTER", 401, "REGISTER", 200],
    "call": ["INVITE", 100, 180, 200, "ACK", "BYE", 200],
    "busy": ["INVITE", 100, 486, "ACK"],
    "cancel": ["INVITE", 100, 180, "CANCEL", 200, 487, "ACK"],
}
REALM = "wirebeat.test"
#: RFC 3261 §7.3.3 compact forms used by the scenarios.
COMPACT = {"i": "call-id", "f": "from", "t": "to", "v": "via", "m": "contact", "l": "content-length"}

_ENTRY = re.compile(
    rb"^-{47} [^\n]*\n(UDP|TCP) message (sent|received) (?:\((\d+) bytes\)|\[(\d+)\] bytes ?):\n\n",
    re.MULTILINE,
)


# -- sipp ---------------------------------------------------------------------------------------


def free_both() -> int:
    """A port free for both TCP and UDP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket() as t:
            t.bind((HOST, 0))
            port = int(t.getsockname()[1])
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                try:
                    u.bind((HOST, port))
                except OSError:
                    continue
            return port
    raise RuntimeError("no port free for both TCP and UDP")


def _bound(port: int, transport: str) -> bool:
    """Is ``port`` bound (UDP) or listening (TCP) on this host? (/proc/net, no tools)"""
    want = f":{port:04X}"
    for name in (f"/proc/net/{transport}", f"/proc/net/{transport}6"):
        with contextlib.suppress(OSError), open(name) as f:
            for line in f.readlines()[1:]:
                parts = line.split()
                if parts[1].endswith(want) and (transport == "udp" or parts[3] == "0A"):
                    return True
    return False


def read_log(path: Path) -> list[tuple[str, str, bytes]]:
    """sipp's message log: (transport, "sent"/"received", message bytes) in order."""
    data = path.read_bytes()
    out = []
    for m in _ENTRY.finditer(data):
        n = int(m.group(3) or m.group(4))
        out.append((m.group(1).decode(), m.group(2).decode(), data[m.end() : m.end() + n]))
    return out


class Run:
    """One flow between a sipp server and a sipp (or this test's) client."""

    def __init__(self, flow: str, transport: str, uac_port: int, uac_log: Path | None, uas_log: Path) -> None:
        self.flow = flow
        self.transport = transport
        self.uac_port = uac_port
        self.uac_log = uac_log
        self.uas_log = uas_log
        #: Messages the client sent, when the client is this test.
        self.client_sent: list[bytes] = []

    def sent(self) -> list[tuple[str, bytes]]:
        """("uac"/"uas", message) for every message either side sent, per side in order."""
        out = [("uas", m) for _t, way, m in read_log(self.uas_log) if way == "sent"]
        if self.uac_log is not None:
            out += [("uac", m) for _t, way, m in read_log(self.uac_log) if way == "sent"]
        else:
            out += [("uac", m) for m in self.client_sent]
        return out


def sipp_uas(workdir: Path, flow: str, port: int, transport: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = workdir / f"uas-{flow}-{transport}.log"
    proc = subprocess.Popen(
        [need_tool("sipp"), "-sf", str(SCENARIOS / f"uas_{flow}.xml"), "-i", HOST, "-p", str(port),
         "-t", "u1" if transport == "udp" else "t1", "-m", "1", "-nostdin", "-timeout", "15s",
         "-timeout_error", "-trace_msg", "-message_file", str(log)],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while not _bound(port, transport):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"sipp server did not start: {proc.communicate()[1]!r}")
        time.sleep(0.05)
    return proc, log


def run_flow(workdir: Path, flow: str, transport: str, uas_port: int) -> Run:
    uas, uas_log = sipp_uas(workdir, flow, uas_port, transport)
    uac_port = free_both()
    uac_log = workdir / f"uac-{flow}-{transport}.log"
    try:
        uac = subprocess.run(
            [need_tool("sipp"), "-sf", str(SCENARIOS / f"uac_{flow}.xml"), f"{HOST}:{uas_port}",
             "-i", HOST, "-p", str(uac_port), "-t", "u1" if transport == "udp" else "t1", "-m", "1",
             "-nostdin", "-cid_str", f"{flow}-%u-%p@%s", "-timeout", "15s", "-timeout_error",
             "-trace_msg", "-message_file", str(uac_log)],
            cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=30,
        )  # fmt: skip
        assert uac.returncode == 0, f"sipp client {flow}/{transport} failed: {uac.stderr!r}"
        assert uas.wait(timeout=20) == 0, f"sipp server {flow}/{transport} failed"
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.wait()
    return Run(flow, transport, uac_port, uac_log, uas_log)


def options(n: int, call_id: str, port: int, uas_port: int) -> bytes:
    return (
        f"OPTIONS sip:bob@{HOST}:{uas_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP {HOST}:{port};branch=z9hG4bK-opt-{n}\r\n"
        f"From: <sip:probe@wirebeat.test>;tag=opt\r\n"
        f"To: <sip:bob@{HOST}:{uas_port}>\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {n} OPTIONS\r\n"
        "Max-Forwards: 70\r\n"
        "Accept: application/sdp\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def run_segments(workdir: Path, uas_port: int) -> Run:
    """Over TCP: OPTIONS cut into three segments, then two OPTIONS in one segment."""
    uas, uas_log = sipp_uas(workdir, "options", uas_port, "tcp")
    run = Run("options", "tcp", 0, None, uas_log)
    try:
        with socket.create_connection((HOST, uas_port), timeout=10, source_address=(HOST, 0)) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            port = s.getsockname()[1]
            run.uac_port = port
            call_id = f"segments-{port}@{HOST}"
            msgs = [options(n, call_id, port, uas_port) for n in (1, 2, 3)]
            first = msgs[0]
            for a, b in ((0, 40), (40, 150), (150, len(first))):
                s.sendall(first[a:b])
                time.sleep(0.1)
            _read_responses(s, 1)
            s.sendall(msgs[1] + msgs[2])
            _read_responses(s, 2)
            run.client_sent = msgs
        assert uas.wait(timeout=20) == 0, "sipp server options failed"
    finally:
        if uas.poll() is None:
            uas.kill()
            uas.wait()
    return run


def _read_responses(s: socket.socket, n: int) -> None:
    got = b""
    while got.count(b"\r\n\r\n") < n:
        chunk = s.recv(65536)
        if not chunk:
            raise EOFError("sipp closed the connection")
        got += chunk


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[dict[str, Any]], list[Run], int, Decoder]:
    need_tool("sipp")
    workdir = tmp_path_factory.mktemp("sip")
    pcap = workdir / "sip-live.pcap"
    uas_port = free_both()
    runs: list[Run] = []
    with tcpdump(pcap, f"port {uas_port}", settle=1.0):
        # The first packets after tcpdump says it listens can still be missed: probe until one
        # (a refused TCP connection, no SIP bytes) is in the file.
        deadline = time.monotonic() + 15
        while not (pcap.exists() and pcap.stat().st_size > 24):
            with contextlib.suppress(OSError), socket.create_connection((HOST, uas_port), timeout=1):
                pass
            time.sleep(0.2)
            assert time.monotonic() < deadline, "tcpdump never captured the probes"
        for transport in ("udp", "tcp"):
            for flow in FLOWS:
                runs.append(run_flow(workdir, flow, transport, uas_port))
        runs.append(run_segments(workdir, uas_port))
    record_for_oracle(pcap, [{"type": "sip", "ports": [uas_port]}], label="sip-live")
    record_for_oracle(
        pcap, [{"type": "sip", "ports": [uas_port], "transport_protocol": "tcp"}], label="sip-live-tcp-option"
    )
    dec = make_decoder({"sip": {"ports": [uas_port]}})
    events: list[dict[str, Any]] = []
    for ts, lt, frame, _wl in CaptureFile(str(pcap)):
        events += dec.feed(ts, lt, frame)
    events += dec.flush()
    return events, runs, uas_port, dec


# -- what the logged text says, read independently --------------------------------------------


def parse_text(msg: bytes) -> tuple[str, dict[str, list[str]], str]:
    head, _, body = msg.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        headers.setdefault(COMPACT.get(key, key), []).append(value.strip())
    return lines[0], headers, body


_URI = re.compile(r"^(sips?):(?:([^@;]+)@)?(\[[^\]]+\]|[^:;]+)(?::(\d+))?")


def uri_fields(uri: str) -> dict[str, Any]:
    m = _URI.match(uri)
    assert m, uri
    out: dict[str, Any] = {"original": uri, "scheme": m.group(1), "host": m.group(3)}
    if m.group(2):
        out["username"] = m.group(2)
    if m.group(4):
        out["port"] = int(m.group(4))
    return out


def name_addr(value: str) -> tuple[str, str, dict[str, str]]:
    m = re.match(r'^\s*(?:"([^"]*)"|([^<]*?))\s*<([^>]*)>(.*)$', value)
    assert m, value
    params = dict(re.findall(r";\s*([^=;]+)=([^;]*)", m.group(4)))
    return (m.group(1) or m.group(2) or "").strip(), m.group(3), params


def expected(msg: bytes) -> dict[str, Any]:
    """The ``sip.*`` fields (flattened) a message must give, read from its text."""
    start, h, body = parse_text(msg)
    exp: dict[str, Any] = {"sip.version": "2.0"}
    parts = start.split(" ", 2)
    if parts[0] == "SIP/2.0":
        exp.update({"sip.type": "response", "sip.code": int(parts[1]), "sip.status": parts[2]})
    else:
        exp.update({"sip.type": "request", "sip.method": parts[0]})
        exp.update({f"sip.uri.{k}": v for k, v in uri_fields(parts[1]).items()})
    exp["sip.call_id"] = h["call-id"][0]
    code, method = h["cseq"][0].split(" ")
    exp["sip.cseq.code"] = int(code)
    exp["sip.cseq.method"] = method
    exp["sip.via.original"] = h["via"]
    for side in ("from", "to"):
        display, uri, params = name_addr(h[side][0])
        if display:
            exp[f"sip.{side}.display_info"] = display
        exp.update({f"sip.{side}.uri.{k}": v for k, v in uri_fields(uri).items()})
        if "tag" in params:
            exp[f"sip.{side}.tag"] = params["tag"]
    if "contact" in h:
        display, uri, params = name_addr(h["contact"][0])
        if display:
            exp["sip.contact.display_info"] = display
        exp.update({f"sip.contact.uri.{k}": v for k, v in uri_fields(uri).items()})
        uparams = dict(re.findall(r";([^=;]+)=([^;]*)", uri))
        if "transport" in uparams:
            exp["sip.contact.transport"] = uparams["transport"].lower()
        if "line" in uparams:
            exp["sip.contact.line"] = uparams["line"]
        if "expires" in params:
            exp["sip.contact.expires"] = int(params["expires"])
        if "q" in params:
            exp["sip.contact.q"] = float(params["q"])
    length = int(h["content-length"][0])
    if length:
        exp["sip.content_length"] = length
    for name, key in (("max-forwards", "sip.max_forwards"),):
        if name in h:
            exp[key] = int(h[name][0])
    if "user-agent" in h:
        exp["sip.user_agent.original"] = h["user-agent"][0]
    for name in ("allow", "supported"):
        if name in h:
            exp[f"sip.{name}"] = [x.strip().lower() for x in h[name][0].split(",")]
    if "accept" in h:
        exp["sip.accept"] = h["accept"][0].lower()
    if "p-associated-uri" in h:
        first = re.match(r"<([^>]*)>", h["p-associated-uri"][0])
        assert first
        exp.update({f"sip.private.uri.{k}": v for k, v in uri_fields(first.group(1)).items()})
    if "authorization" in h:
        auth = h["authorization"][0]
        scheme, _, rest = auth.partition(" ")
        params = dict(re.findall(r'(\w+)="?([^",]*)"?', rest))
        exp["sip.auth.scheme"] = scheme
        exp["sip.auth.realm"] = params["realm"]
        uri = uri_fields(params["uri"])
        exp.update({f"sip.auth.uri.{k}": v for k, v in uri.items() if k != "username"})
        exp["user.name"] = params["username"]
    if "content-type" in h:
        exp["sip.content_type"] = h["content-type"][0].lower()
        assert exp["sip.content_type"] == "application/sdp"
        exp["sip.sdp.body.original"] = body
        lines = dict(line.split("=", 1) for line in body.split("\r\n") if line and not line.startswith("a="))
        exp["sip.sdp.version"] = lines["v"]
        user, sess, ver, _net, _af, addr = lines["o"].split(" ")
        if user != "-":
            exp["sip.sdp.owner.username"] = user
        exp.update({"sip.sdp.owner.session_id": sess, "sip.sdp.owner.version": ver, "sip.sdp.owner.ip": addr})
        if lines["s"] != "-":
            exp["sip.sdp.session.name"] = lines["s"]
        # The first c= line: a dict keeps the first value seen only if written so.
        conn = next(line[2:] for line in body.split("\r\n") if line.startswith("c="))
        exp["sip.sdp.connection.info"] = conn
        exp["sip.sdp.connection.address"] = conn.split(" ")[-1]
    return exp


def flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


# -- the checks ---------------------------------------------------------------------------------


def by_original(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        out.setdefault(e["event"]["original"], []).append(e)
    return out


def test_every_message_sipp_sent_is_one_event(live: Live) -> None:
    events, runs, uas_port, _ = live
    index = by_original(events)
    sent = [(run, side, m) for run in runs for side, m in run.sent()]
    assert len(sent) == len(events), (len(sent), len(events))
    for run, side, m in sent:
        matches = index.get(m.decode())
        assert matches, f"{run.flow}/{run.transport}: no event for {m[:60]!r}"
        e = matches.pop(0)
        assert e["network"]["transport"] == run.transport
        src = (e["source"]["ip"], e["source"]["port"])
        dst = (e["destination"]["ip"], e["destination"]["port"])
        uas = (HOST, uas_port)
        assert (src, dst) == ((uas, (HOST, run.uac_port)) if side == "uas" else ((HOST, run.uac_port), uas))
    assert not any(index.values())


def test_fields_as_the_logged_messages_say(live: Live) -> None:
    events, runs, _, _ = live
    index = by_original(events)
    checked = 0
    for run in runs:
        for _side, m in run.sent():
            e = index[m.decode()][0]
            got = flat({k: e[k] for k in ("sip", "user") if k in e})
            want = expected(m)
            for k, v in want.items():
                assert got.get(k) == v, (
                    f"{run.flow}/{run.transport} {k}: {got.get(k)!r} != {v!r}\n{m.decode()}"
                )
            extra = set(got) - set(want)
            assert not extra, f"{run.flow}/{run.transport}: unexpected {sorted(extra)}"
            code = want.get("sip.code", 0)
            ev = e["event"]
            assert e["status"] == ("Error" if code >= 400 else "OK")
            assert ev.get("outcome") == (None if code < 200 else "failure" if code >= 300 else "success")
            assert ev["action"] == "sip-" + (want.get("sip.method") or want["sip.cseq.method"]).lower()
            assert ev["sequence"] == want["sip.cseq.code"]
            assert ev["start"] == ev["end"]
            assert ev["category"] == (["network", "authentication"] if "user.name" in want else ["network"])
            assert ev.get("reason") == want.get("sip.status")
            assert e["network"]["iana_number"] == ("17" if run.transport == "udp" else "6")
            checked += 1
    assert checked == len(events)


def test_flows_in_order_with_auth_realm_from_the_challenge(
    live: Live,
) -> None:
    events, runs, _, _ = live
    for run in runs:
        if run.flow == "options":
            continue
        call_id = parse_text(run.sent()[0][1])[1]["call-id"][0]
        assert call_id.startswith(run.flow + "-")
        mine = [
            e for e in events if e["sip"]["call_id"] == call_id and e["network"]["transport"] == run.transport
        ]
        # A UDP retransmission (sipp resends after 500 ms) repeats a message byte for byte.
        unique = {e["event"]["original"]: e for e in mine}
        seq = [e["sip"].get("method") or e["sip"]["code"] for e in unique.values()]
        assert seq == FLOWS[run.flow]
        if run.flow == "register":
            challenge = next(m for s, m in run.sent() if s == "uas" and m.startswith(b"SIP/2.0 401"))
            assert f'realm="{REALM}"'.encode() in challenge
            authed = [e for e in mine if e["sip"].get("auth")]
            assert authed and all(e["sip"]["auth"]["realm"] == REALM for e in authed)
            assert all(e["user"]["name"] == "alice" for e in authed)
        if run.flow == "cancel":
            terminated = next(e for e in mine if e["sip"].get("code") == 487)
            assert terminated["sip"]["cseq"]["method"] == "INVITE"
            assert terminated["event"]["action"] == "sip-invite"
            ok = next(e for e in mine if e["sip"].get("code") == 200)
            assert ok["event"]["action"] == "sip-cancel"


def test_tcp_segments_split_and_joined(live: Live) -> None:
    events, runs, _, _ = live
    run = next(r for r in runs if r.flow == "options")
    requests = [e for e in events if e["sip"].get("method") == "OPTIONS"]
    assert [e["event"]["original"].encode() for e in requests] == run.client_sent
    assert [e["sip"]["cseq"]["code"] for e in requests] == [1, 2, 3]
    # The first was sent in three segments 0.1 s apart: its time is its first segment's.
    assert requests[0]["event"]["start"] < requests[1]["event"]["start"] - 150_000_000
    assert len([e for e in events if e["sip"]["call_id"] == requests[0]["sip"]["call_id"]]) == 6


def test_decoder_counted_no_problems(live: Live) -> None:
    *_, dec = live
    problems = {k: v for k, v in dec.stats.items() if k.startswith("sip.")}
    assert problems == {}
