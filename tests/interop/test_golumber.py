"""wirebeat → output.logstash → Elastic's go-lumber receiver (the real Lumberjack v2 peer).

Replayed captures must arrive exactly once and equal what output.console prints, with
every compression level, across several load-balanced hosts and over verified TLS.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.helpers import shared_pcap
from tests.interop.ljpeer import Receiver, http_capture, wirebeat, wirebeat_popen


def console_events(pcap: Path, home: Path) -> list[dict[str, Any]]:
    r = wirebeat("-I", str(pcap), "-t", "-E", f"path.home={home}", "-E", "output.console.enabled=true")
    return [orjson.loads(line) for line in r.stdout.splitlines()]


def comparable(e: dict[str, Any]) -> bytes:
    e = dict(e)
    e["agent"] = {k: v for k, v in e["agent"].items() if k != "ephemeral_id"}
    return orjson.dumps(e, option=orjson.OPT_SORT_KEYS)


def ship(pcap: Path, home: Path, *opts: str) -> None:
    args = ["-I", str(pcap), "-t", "-E", f"path.home={home}"]
    for o in opts:
        args += ["-E", o]
    wirebeat(*args)


@pytest.fixture(scope="module")
def synth_pcap(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return http_capture(tmp_path_factory.mktemp("cap") / "synth.pcap", 5000)


@pytest.mark.parametrize("name", ["http_minitwit", "http_post", "http_url_params", "http_basicauth"])
def test_shared_captures_arrive_as_console_prints_them(
    name: str, receivers: Callable[..., Receiver], tmp_path: Path
) -> None:
    pcap = shared_pcap(name)
    expected = console_events(pcap, tmp_path)
    assert expected
    r = receivers()
    ship(pcap, tmp_path, f"output.logstash.hosts=['{r.address}']")
    got = r.events()
    assert [comparable(e) for e in got] == [comparable(e) for e in expected]
    # The envelope libbeat's Logstash pipelines rely on.
    assert all(e["@metadata"]["beat"] == "packetbeat" and e["@metadata"]["type"] == "_doc" for e in got)


@pytest.mark.parametrize("level", [0, 3, 9])
def test_synthetic_capture_exactly_once_at_every_compression_level(
    level: int, synth_pcap: Path, receivers: Callable[..., Receiver], tmp_path: Path
) -> None:
    expected = console_events(synth_pcap, tmp_path)
    assert len(expected) == 5000
    r = receivers()
    ship(
        synth_pcap,
        tmp_path,
        f"output.logstash.hosts=['{r.address}']",
        f"output.logstash.compression_level={level}",
        "output.logstash.bulk_max_size=700",
    )
    got = r.events()
    assert len(got) == 5000
    assert sorted(comparable(e) for e in got) == sorted(comparable(e) for e in expected)
    paths = [e["url"]["path"] for e in got]
    assert len(set(paths)) == 5000


def test_loadbalance_over_three_hosts(
    synth_pcap: Path, receivers: Callable[..., Receiver], tmp_path: Path
) -> None:
    rs = [receivers() for _ in range(3)]
    hosts = ",".join(f"'{r.address}'" for r in rs)
    ship(
        synth_pcap,
        tmp_path,
        f"output.logstash.hosts=[{hosts}]",
        "output.logstash.loadbalance=true",
        "output.logstash.bulk_max_size=100",
        "queue.mem.flush.min_events=0",
    )
    per_host = [r.events() for r in rs]
    assert all(per_host), [len(p) for p in per_host]
    paths = sorted(e["url"]["path"] for p in per_host for e in p)
    assert paths == sorted(f"/item/{i}" for i in range(5000))


def test_custom_index_sets_metadata_beat(receivers: Callable[..., Receiver], tmp_path: Path) -> None:
    r = receivers()
    ship(
        shared_pcap("http_post"),
        tmp_path,
        f"output.logstash.hosts=['{r.address}']",
        "output.logstash.index=netmon",
    )
    (e,) = r.events()
    assert e["@metadata"]["beat"] == "netmon"


def test_escape_html(receivers: Callable[..., Receiver], tmp_path: Path) -> None:
    r = receivers()
    ship(
        shared_pcap("http_url_params"),
        tmp_path,
        f"output.logstash.hosts=['{r.address}']",
        "output.logstash.escape_html=true",
    )
    raw = r.files[0].read_bytes()
    assert b"&" not in raw and b"\\u0026" in raw


# -- TLS ---------------------------------------------------------------------------------------


def tls_receiver(
    receivers: Callable[..., Receiver], pki: dict[str, Path], *, wrong_name: bool = False
) -> Receiver:
    cert, key = (pki["wrong_cert"], pki["wrong_key"]) if wrong_name else (pki["cert"], pki["key"])
    return receivers("-cert", str(cert), "-key", str(key))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_tls_with_verification(
    host: str, receivers: Callable[..., Receiver], pki: dict[str, Path], tmp_path: Path
) -> None:
    r = tls_receiver(receivers, pki)
    pcap = shared_pcap("http_minitwit")
    expected = console_events(pcap, tmp_path)
    ship(
        pcap,
        tmp_path,
        f"output.logstash.hosts=['{host}:{r.port}']",
        f"output.logstash.ssl.certificate_authorities=['{pki['ca']}']",
        "output.logstash.ssl.verification_mode=full",
    )
    assert [comparable(e) for e in r.events()] == [comparable(e) for e in expected]


def run_refused(r: Receiver, tmp_path: Path, *opts: str) -> str:
    """A replay that cannot deliver; returns its log once the refusal is in it.

    A TLS handshake that fails is a connection failure: like libbeat, wirebeat keeps
    retrying (no retry is charged, nothing is dropped) until it is stopped."""
    proc = wirebeat_popen(
        "-I",
        str(shared_pcap("http_post")),
        "-t",
        "-e",
        "-E",
        f"path.home={tmp_path}",
        "-E",
        "output.logstash.backoff.init=10ms",
        "-E",
        "output.logstash.backoff.max=50ms",
        *[x for o in opts for x in ("-E", o)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        for raw in proc.stderr:
            lines.append(raw.decode())
            if "no retry charged" in lines[-1] or time.monotonic() > deadline:
                break
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    # Stopped with its events never delivered: they are lost for good (exit status 3).
    assert proc.returncode == 3
    assert r.events() == []
    return "".join(lines)


def test_tls_wrong_ca_is_refused_with_a_clear_error(
    receivers: Callable[..., Receiver], pki: dict[str, Path], tmp_path: Path
) -> None:
    r = tls_receiver(receivers, pki)
    log = run_refused(
        r,
        tmp_path,
        f"output.logstash.hosts=['{r.address}']",
        f"output.logstash.ssl.certificate_authorities=['{pki['other_ca']}']",
    )
    assert "TLS handshake with 127.0.0.1" in log
    assert "certificate verification failed: unable to get local issuer certificate" in log


def test_tls_wrong_hostname_is_refused_with_a_clear_error(
    receivers: Callable[..., Receiver], pki: dict[str, Path], tmp_path: Path
) -> None:
    r = tls_receiver(receivers, pki, wrong_name=True)
    for host, what in (("localhost", "Hostname"), ("127.0.0.1", "IP address")):
        log = run_refused(
            r,
            tmp_path,
            f"output.logstash.hosts=['{host}:{r.port}']",
            f"output.logstash.ssl.certificate_authorities=['{pki['ca']}']",
        )
        expected = f"certificate verification failed: {what} mismatch, certificate is not valid for '{host}'"
        assert expected in log


def test_tls_verification_mode_certificate_skips_the_name_only(
    receivers: Callable[..., Receiver], pki: dict[str, Path], tmp_path: Path
) -> None:
    r = tls_receiver(receivers, pki, wrong_name=True)
    ship(
        shared_pcap("http_post"),
        tmp_path,
        f"output.logstash.hosts=['{r.address}']",
        f"output.logstash.ssl.certificate_authorities=['{pki['ca']}']",
        "output.logstash.ssl.verification_mode=certificate",
    )
    assert len(r.events()) == 1


# -- wirebeat test output ---------------------------------------------------------------------


def test_test_output_verdicts(
    receivers: Callable[..., Receiver], pki: dict[str, Path], tmp_path: Path
) -> None:
    plain = receivers()
    res = wirebeat(
        "test", "output", "-E", f"path.home={tmp_path}", "-E", f"output.logstash.hosts=['{plain.address}']"
    )
    out = res.stdout.decode()
    assert f"logstash: {plain.address}..." in out
    assert "dial up... OK" in out and "TLS... WARN secure connection disabled" in out
    assert "talk to server... OK" in out
    (probe,) = plain.events()
    assert probe["tags"] == ["wirebeat_test_output"]

    tls = tls_receiver(receivers, pki)
    ok = wirebeat(
        "test",
        "output",
        "-E",
        f"path.home={tmp_path}",
        "-E",
        f"output.logstash.hosts=['localhost:{tls.port}']",
        "-E",
        f"output.logstash.ssl.certificate_authorities=['{pki['ca']}']",
    ).stdout.decode()
    assert "handshake... OK" in ok and "TLS version: TLSv1.3" in ok and "talk to server... OK" in ok

    bad = wirebeat(
        "test",
        "output",
        "-E",
        f"path.home={tmp_path}",
        "-E",
        f"output.logstash.hosts=['{tls.address}']",
        "-E",
        f"output.logstash.ssl.certificate_authorities=['{pki['other_ca']}']",
        check=False,
    )
    assert bad.returncode == 1
    text = bad.stdout.decode()
    assert "handshake... ERROR" in text and "unable to get local issuer certificate" in text
