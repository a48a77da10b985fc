"""``codec.format.string`` and ``codec.json.{pretty,escape_html}`` for ``output.console``
and ``output.file``, through the CLI on a real capture; the lines are those Packetbeat 9.3
writes for the same capture and options (checked against the real binary when it is
built: ``test_same_lines_as_packetbeat``)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import shared_pcap
from tests.shipper.shiprun import Run, flatten, wirebeat

PCAP = shared_pcap("http_url_params")
FORMAT = "%{[@timestamp]} %{[type]} %{[url.full]} %{[http.response.status_code]} %{[nope]:-}"
LINE = (
    "2015-03-31T11:52:59.704Z http http://packetbeat.com/dashboard/transactions?input=packetbeat"
    "&src_ip=192.35.243.1 404 -"
)


def doc(text: str) -> dict[str, object]:
    """An event without what differs between runs and data directories (agent ids)."""
    event = json.loads(text)
    del event["agent"]["ephemeral_id"], event["agent"]["id"]
    return dict(event)


def console(tmp_path: Path, *overrides: str) -> Run:
    args = [a for o in overrides for a in ("-E", o)]
    return wirebeat("-t", "-I", PCAP, *args, tmp=tmp_path)


def file_lines(tmp_path: Path, *overrides: str) -> list[str]:
    out = tmp_path / "out"
    args = [a for o in (f"output.file.path={out}", "output.file.filename=ev", *overrides) for a in ("-E", o)]
    run = wirebeat("-t", "-I", PCAP, *args, tmp=tmp_path)
    assert run.rc == 0, run
    (path,) = out.iterdir()
    return path.read_text().splitlines()


def test_format_string_on_console_and_file(tmp_path: Path) -> None:
    run = console(tmp_path, f"output.console.codec.format.string={FORMAT}")
    assert run.rc == 0, run
    assert run.stdout == LINE + "\n"
    assert file_lines(tmp_path, f"output.file.codec.format.string={FORMAT}") == [LINE]


def test_format_string_with_a_missing_field_drops_and_counts_the_event(tmp_path: Path) -> None:
    run = wirebeat("-e", "-t", "-I", PCAP, "-E", "output.console.codec.format.string=%{[nope]}", tmp=tmp_path)
    assert run.rc == 3, run  # a replay that lost events for good says so in its exit status
    assert run.stdout == ""
    logs = run.logs
    assert any("codec.format.string needs field nope" in r["message"] for r in logs), run
    totals = flatten(next(r for r in logs if r["message"] == "Total metrics")["monitoring"]["metrics"])
    assert totals["libbeat.output.events.dropped"] == 1
    assert totals["pipeline.output.dropped_unencodable"] == 1


def test_json_escape_html_and_pretty(tmp_path: Path) -> None:
    plain = console(tmp_path).stdout
    assert "input=packetbeat&src_ip" in plain and "\\u0026" not in plain
    for key in ("escape_html", "escapehtml"):  # the documented name and the one libbeat 9 reads
        escaped = console(tmp_path, f"output.console.codec.json.{key}=true").stdout
        assert "input=packetbeat\\u0026src_ip" in escaped and "&" not in escaped
        assert doc(escaped) == doc(plain)
    (line,) = file_lines(tmp_path, "output.file.codec.json.escape_html=true")
    assert "\\u0026" in line and "&" not in line and doc(line) == doc(plain)
    pretty = console(tmp_path, "output.console.codec.json.pretty=true").stdout
    assert pretty.startswith('{\n  "@metadata": {\n    "beat": "packetbeat",\n')
    assert doc(pretty) == doc(plain)
    older = console(tmp_path, "output.console.pretty=true").stdout  # libbeat's older spelling
    assert doc(older) == doc(pretty) and older.count("\n") == pretty.count("\n")
    lines = file_lines(tmp_path / "f", "output.file.codec.json.pretty=true")
    assert doc("\n".join(lines)) == doc(plain) and lines[1].startswith('  "@metadata"')


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            "output.console.codec.format.string=%{[x}",
            "output.console.codec.format.string: missing closing ']' (from -E)",
        ),
        (
            "output.console.codec={json: {pretty: true}, format: {string: x}}",
            "output.console.codec: more than one codec configured (json and format); choose one",
        ),
        (
            "output.console.codec.json.pretty=maybe",
            "expected true or false accessing 'output.console.codec.json.pretty'",
        ),
    ],
)
def test_bad_codec_settings_are_one_line(tmp_path: Path, override: str, message: str) -> None:
    cfg = tmp_path / "wirebeat.yml"
    cfg.write_text("packetbeat.protocols:\n- type: http\n  ports: [80]\n")
    run = wirebeat("test", "config", "-c", cfg, "-E", override, tmp=tmp_path)
    assert run.rc == 1, run
    assert run.stderr.count("\n") == 1 and run.stderr.startswith("Exiting: ") and message in run.stderr, run


def test_same_lines_as_packetbeat(tmp_path: Path) -> None:
    from tests.oracle.oracle import packetbeat

    pb = packetbeat()
    cfg = tmp_path / "packetbeat.yml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "packetbeat.protocols": [{"type": "http", "ports": [80]}],
                "output.console.enabled": True,
                "queue.mem.flush.timeout": "0s",
                "packetbeat.shutdown_timeout": "2s",
                "path.data": str(tmp_path / "pbdata"),
                "logging.level": "warning",
            }
        )
    )
    cfg.chmod(0o600)

    def packetbeat_stdout(*overrides: str) -> str:
        args = [a for o in overrides for a in ("-E", o)]
        proc = subprocess.run(
            [str(pb), "-t", "-I", str(PCAP), "-c", str(cfg), *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc
        return proc.stdout

    assert packetbeat_stdout(f"output.console.codec.format.string={FORMAT}") == LINE + "\n"
    escaped = packetbeat_stdout("output.console.codec.json.escapehtml=true")
    ours = console(tmp_path, "output.console.codec.json.escapehtml=true").stdout
    url = '"full":"http://packetbeat.com/dashboard/transactions?input=packetbeat\\u0026src_ip=192.35.243.1"'
    assert url in escaped and url in ours


def test_redis_output_takes_the_codecs_too(tmp_path: Path) -> None:
    """libbeat's output.redis has a codec as well: the list holds what the codec wrote."""
    import redis

    from tests.interop.ljpeer import redis_server

    with redis_server(tmp_path) as port:
        base = ["-E", f"output.redis.hosts=['127.0.0.1:{port}']", "-E", "output.redis.key=events"]
        run = wirebeat(
            "-t", "-I", PCAP, *base, "-E", f"output.redis.codec.format.string={FORMAT}", tmp=tmp_path
        )
        assert run.rc == 0, run
        client = redis.Redis(port=port)
        assert client.lrange("events", 0, -1) == [LINE.encode()]
        client.delete("events")
        run = wirebeat(
            "-t", "-I", PCAP, *base, "-E", "output.redis.codec.json.escape_html=true", tmp=tmp_path
        )
        assert run.rc == 0, run
        (value,) = client.lrange("events", 0, -1)
        assert b"packetbeat\\u0026src_ip" in value and b"&" not in value
        client.close()
