"""Packetbeat's SIP captures give what Packetbeat 9.3 gives (its golden tests ``SIP``, ``SIP
Authenticated Register`` and ``SIP Through TCP``).

The expectations (tests/protocols/sip_expected.py) are Packetbeat 9.3.0's own events, written
out once. Every event must come out with the same fields and values once the documented
differences (docs/differences.md, SIP) are applied to Packetbeat's side, each spelled out
below with the values the capture's headers hold: ``sip.contact.*`` from the Contact header
(Packetbeat parses To again), ``sip.private.uri.*`` from inside the angle brackets, and
``network.iana_number`` 6 over TCP.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from shipper.pipeline.envelope import Envelope
from shipper.setup.fields import check_event, flatten, load_fields
from tests.helpers import SHARED_PCAPS, beats_dir, beats_pcap, decode_file, need
from tests.protocols.sip_expected import EXPECTED

SKIP = ("agent.", "host.", "@metadata.", "ecs.")
OPTIONS = {"sip": {}, "sip_authenticated_register": {}, "sip_tcp": {"transport_protocol": "tcp"}}


def _contact(original: str, host: str, port: int = 0, user: str = "", **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "sip.contact.uri.original": original,
        "sip.contact.uri.scheme": "sip",
        "sip.contact.uri.host": host,
    }
    if port:
        out["sip.contact.uri.port"] = port
    if user:
        out["sip.contact.uri.username"] = user
    out.update({f"sip.contact.{k}": v for k, v in more.items()})
    return out


# The Contact header of each message that has one, as the capture holds it.
SIPP = _contact("sip:sipp@10.0.2.20:5060", "10.0.2.20", 5060, "sipp")
FREESWITCH = _contact("sip:test@10.0.2.15:5060;transport=udp", "10.0.2.15", 5060, "test", transport="udp")
FS_BYE = _contact("sip:10.0.2.20:5060;transport=UDP", "10.0.2.20", 5060, transport="udp")
NERO = _contact(
    "sip:voi18062@192.168.1.2:5060;line=aca6b97ca3f5e51a",
    "192.168.1.2",
    5060,
    "voi18062",
    line="aca6b97ca3f5e51a",
    expires=1200,
    q=0.5,
)
IPP = _contact("sip:101@10.33.6.100:5060;transport=tcp", "10.33.6.100", 5060, "101", transport="tcp")
GW = _contact("sip:201@10.33.6.101:5060;transport=tcp", "10.33.6.101", 5060, "201", transport="tcp")
CONTACTS: dict[str, dict[int, dict[str, Any]]] = {
    "sip": {0: SIPP, 2: FREESWITCH, 3: SIPP, 5: FS_BYE, 6: SIPP, 8: FREESWITCH, 9: SIPP, 11: FS_BYE},
    "sip_authenticated_register": {0: NERO, 2: NERO},
    "sip_tcp": {0: IPP, 2: GW, 3: GW, 4: IPP, 6: IPP},
}
OTHER: dict[str, dict[int, dict[str, Any]]] = {
    "sip_authenticated_register": {
        # Contact's host joins related.hosts; P-Associated-URI: <sip:35104723@sip.cybercity.dk>.
        0: {"related.hosts": ["sip.cybercity.dk", "192.168.1.2"]},
        2: {
            "related.hosts": ["sip.cybercity.dk", "192.168.1.2"],
            "sip.private.uri.original": "sip:35104723@sip.cybercity.dk",
            "sip.private.uri.scheme": "sip",
            "sip.private.uri.host": "sip.cybercity.dk",
        },
    },
}


def capture(name: str) -> Path:
    p = SHARED_PCAPS / f"{name}.pcap"
    return p if p.exists() else beats_pcap(name)


def events(name: str) -> list[dict[str, Any]]:
    env = Envelope(beat_name="test")
    out = []
    for evt in decode_file(capture(name), {"sip": {"ports": [5060], **OPTIONS[name]}}):
        full = flatten(env.apply(evt))
        out.append({k: v for k, v in sorted(full.items()) if not k.startswith(SKIP)})
    return out


def documented(name: str, i: int, exp: dict[str, Any]) -> dict[str, Any]:
    """Packetbeat's event with wirebeat's deliberate differences applied."""
    out = {k: v for k, v in exp.items() if not k.startswith("sip.contact.")}
    out.update(CONTACTS.get(name, {}).get(i, {}))
    out.update(OTHER.get(name, {}).get(i, {}))
    if out["network.transport"] == "tcp":
        out["network.iana_number"] = "6"
    return dict(sorted(out.items()))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capture_matches_packetbeat(name: str) -> None:
    got = events(name)
    want = [documented(name, i, e) for i, e in enumerate(EXPECTED[name])]
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g == w


def test_packetbeat_reads_contact_from_to() -> None:
    """The difference the overrides above stand for: Packetbeat's contact is the To URI."""
    for name, evs in EXPECTED.items():
        for e in evs:
            if "sip.contact.uri.original" in e:
                assert e["sip.contact.uri.original"] == e["sip.to.uri.original"], name


def test_default_transport_option_on_tcp_capture() -> None:
    """With the default ``transport_protocol: udp`` Packetbeat labels TCP traffic ``udp``;
    wirebeat says what the packets are (docs/differences.md sip/transport-from-packet)."""
    env = Envelope(beat_name="test")
    evs = [env.apply(e) for e in decode_file(capture("sip_tcp"), {"sip": {"ports": [5060]}})]
    assert len(evs) == 7
    assert {e["network"]["transport"] for e in evs} == {"tcp"}
    assert {e["network"]["iana_number"] for e in evs} == {"6"}
    assert {e["network"]["community_id"] for e in evs} == {"1:nWlU53kb2GqnNe1VDWV69Wz6OJc="}


def test_options_off() -> None:
    name = "sip_authenticated_register"
    opts = {"parse_authorization": False, "parse_body": False, "keep_original": False}
    evs = decode_file(capture(name), {"sip": {"ports": [5060], **opts}})
    assert len(evs) == 3
    first = evs[0]
    assert "auth" not in first["sip"] and "user" not in first and "original" not in first["event"]
    assert first["event"]["category"] == ["network", "authentication"]
    assert first["related"]["user"] == ["voi18062"]  # from the URIs, not the credentials
    tcp = decode_file(capture("sip_tcp"), {"sip": {"ports": [5060], "parse_body": False}})
    assert not any("sdp" in e["sip"] for e in tcp)


def test_events_fit_the_template() -> None:
    fields = load_fields()
    env = Envelope(beat_name="test")
    for name in EXPECTED:
        for evt in decode_file(capture(name), {"sip": {"ports": [5060], **OPTIONS[name]}}):
            assert check_event(env.apply(evt), fields) == []


GOLDEN = {
    "sip": "sip",
    "sip_authenticated_register": "sip_authenticated_register",
    "sip_tcp": "sip_through_tcp",
}
#: What Packetbeat's golden test leaves out (host-dependent, or times it cannot take from a pcap).
GOLDEN_SKIP = (
    "@metadata.",
    "agent.",
    "host.",
    "ecs.",
    "@timestamp",
    "event.start",
    "event.end",
    "network.direction",
)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_packetbeat_golden_files(name: str) -> None:
    """Packetbeat's own golden files for these captures (read from the beats module at test
    time), with the same documented differences applied."""
    d = beats_dir()
    if d is None:
        need("the beats module (scripts/build-packetbeat downloads it)")
    assert d is not None
    path = d / "packetbeat" / "tests" / "system" / "golden" / f"{GOLDEN[name]}-expected.json"
    golden = json.loads(path.read_text())
    got = [{k: v for k, v in e.items() if not k.startswith(GOLDEN_SKIP)} for e in events(name)]
    want = []
    for i, e in enumerate(golden):
        w = documented(name, i, {k: v for k, v in e.items() if not k.startswith(GOLDEN_SKIP)})
        want.append({k: v for k, v in w.items() if not k.startswith(GOLDEN_SKIP)})
    assert len(got) == len(want)
    # The golden test matches events in any order.
    for w in want:
        assert w in got, w
