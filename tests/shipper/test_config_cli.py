"""`wirebeat test config` as Packetbeat's: no config file is an error naming the files
looked for; a broken rule is one line naming the key, the rule and where the value came
from; ``-E`` reaches list entries by index; strict.perms on the config file; ``--help``
lists every command."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from shipper.agent.settings import load_settings
from tests.helpers import ROOT, need
from tests.shipper.shiprun import wirebeat

CONFIG = """\
packetbeat.protocols:
- type: http
  ports: [80]
- type: mysql
  ports: [3306]
- type: redis
  ports: [6379]
output.console.enabled: true
"""


def config(tmp_path: Path, text: str = CONFIG, name: str = "wirebeat.yml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    path.chmod(0o644)
    return path


def one_line(run: object) -> str:
    rc, stderr = run.rc, run.stderr  # type: ignore[attr-defined]
    assert rc == 1, run
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Exiting: ") and "Traceback" not in stderr, run
    return str(lines[0])


def test_test_config_without_a_config_file_says_where_it_looked(tmp_path: Path) -> None:
    assert not (ROOT / "wirebeat.yml").exists() and not (ROOT / "packetbeat.yml").exists()
    line = one_line(wirebeat("test", "config", tmp=tmp_path))
    assert line == (
        f"Exiting: error loading config file: no config file found (looked for {ROOT}/wirebeat.yml, "
        f"{ROOT}/packetbeat.yml); give one with -c FILE"
    )
    # --path.config is where it looks; packetbeat.yml alone is found there.
    config(tmp_path, CONFIG, "packetbeat.yml")
    ok = wirebeat("test", "config", "--path.config", tmp_path, tmp=tmp_path)
    assert (ok.rc, ok.stdout) == (0, "Config OK\n"), ok
    # -c FILE that does not exist: the file named.
    assert "nope.yml" in one_line(wirebeat("test", "config", "-c", tmp_path / "nope.yml", tmp=tmp_path))


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("flag", "requires value >= 32 accessing 'queue.mem.events' (got -5, from -E)"),
        ("file", "requires value >= 32 accessing 'queue.mem.events' (got -5, from {cfg})"),
        ("env", "requires value >= 32 accessing 'queue.mem.events' (got -5, from the environment "
                "variable ${{QEV}}, referenced in -E)"),
        ("type", "expected an integer accessing 'queue.mem.events' (got 'lots', from -E)"),
        ("duration", "packetbeat.protocols.0.transaction_timeout: invalid duration 'soon' (use forms "
                     "like 10s, 500ms, 1m) (from -E)"),
        ("protocol", "requires value >= 0 accessing 'packetbeat.protocols.1.max_rows' (got -1, from -E)"),
        ("bool", "expected true or false accessing 'packetbeat.protocols.2.send_request' (got 'maybe', from {cfg})"),
    ],
)  # fmt: skip
def test_a_broken_rule_is_one_line_naming_key_rule_and_source(
    tmp_path: Path, source: str, expected: str
) -> None:
    text = CONFIG
    args: list[str] = []
    env = {}
    if source == "flag":
        args = ["-E", "queue.mem.events=-5"]
    elif source == "file":
        text += "queue.mem.events: -5\n"
    elif source == "env":
        args, env = ["-E", "queue.mem.events=${QEV}"], {"QEV": "-5"}
    elif source == "type":
        args = ["-E", "queue.mem.events=lots"]
    elif source == "duration":
        args = ["-E", "packetbeat.protocols.0.transaction_timeout=soon"]
    elif source == "protocol":
        args = ["-E", "packetbeat.protocols.mysql.max_rows=-1"]  # by name: reported by index
    elif source == "bool":
        text = text.replace("  ports: [6379]\n", "  ports: [6379]\n  send_request: maybe\n")
    cfg = config(tmp_path, text)
    line = one_line(wirebeat("test", "config", "-c", cfg, *args, tmp=tmp_path, env=env))
    assert line == "Exiting: error loading config: " + expected.format(cfg=cfg)


def test_E_reaches_list_entries_by_index(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    settings, _ = load_settings(
        str(cfg),
        ["packetbeat.protocols.0.ports=[8080]", "packetbeat.protocols.1.enabled=false"],
        required=True,
    )
    protocols = settings.packetbeat.protocols
    assert protocols["http"].ports == [8080]
    assert protocols["mysql"].enabled is False and protocols["mysql"].ports == [3306]
    assert protocols["redis"].enabled is True and protocols["redis"].ports == [6379]
    # Through the CLI: the exported config shows the change, `test config` accepts it.
    args = [
        "-c",
        cfg,
        "-E",
        "packetbeat.protocols.0.ports=[8080]",
        "-E",
        "packetbeat.protocols.1.enabled=false",
    ]
    ok = wirebeat("test", "config", *args, tmp=tmp_path)
    assert (ok.rc, ok.stdout) == (0, "Config OK\n"), ok
    exported = yaml.safe_load(wirebeat("export", "config", *args, tmp=tmp_path).stdout)
    assert exported["packetbeat"]["protocols"][:2] == [
        {"type": "http", "ports": [8080]},
        {"type": "mysql", "ports": [3306], "enabled": False},
    ]
    # The index just past the end appends an entry; further is an error naming the list.
    settings, _ = load_settings(
        str(cfg), ["packetbeat.protocols.3={type: pgsql, ports: [5433]}"], required=True
    )
    assert settings.packetbeat.protocols["pgsql"].ports == [5433]
    line = one_line(
        wirebeat("test", "config", "-c", cfg, "-E", "packetbeat.protocols.7.ports=[1]", tmp=tmp_path)
    )
    assert "packetbeat.protocols: index 7 out of range (the list has 3 entries)" in line
    # Other lists too: a processor's option.
    cfg2 = config(
        tmp_path, CONFIG + "processors:\n- add_tags: {tags: [a]}\n- add_tags: {tags: [b]}\n", "p.yml"
    )
    settings, _ = load_settings(str(cfg2), ["processors.1.add_tags.tags=[c]"], required=True)
    assert settings.processors[1] == {"add_tags": {"tags": ["c"]}}


def test_the_memory_queue_rule_between_events_and_flush_min_events(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    line = one_line(wirebeat("test", "config", "-c", cfg, "-E", "queue.mem.events=64", tmp=tmp_path))
    rule = "queue.mem: flush.min_events (1600) must not be more than events (64)"
    assert line.endswith(f"{rule} (from -E)")  # the file has no queue.mem section
    in_file = config(tmp_path, CONFIG + "queue.mem.flush.min_events: 512\n", "q.yml")
    line = one_line(wirebeat("test", "config", "-c", in_file, "-E", "queue.mem.events=64", tmp=tmp_path))
    assert line.endswith(f"flush.min_events (512) must not be more than events (64) (from -E and {in_file})")
    ok = wirebeat(
        "test",
        "config",
        "-c",
        cfg,
        "-E",
        "queue.mem.events=64",
        "-E",
        "queue.mem.flush.min_events=64",
        tmp=tmp_path,
    )
    assert ok.rc == 0, ok


def test_strict_perms_on_the_config_file(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.chmod(0o664)
    line = one_line(wirebeat("test", "config", "-c", cfg, tmp=tmp_path))
    assert line == (
        f'Exiting: error loading config file: config file ("{cfg}") can only be writable by the owner '
        f"but the permissions are \"-rw-rw-r--\" (to fix the permissions use: 'chmod go-w {cfg}')"
    )
    cfg.chmod(0o646)
    assert '"-rw-r--rw-"' in one_line(wirebeat("test", "config", "-c", cfg, tmp=tmp_path))
    assert one_line(wirebeat("-c", cfg, "-I", "nothing.pcap", tmp=tmp_path)).startswith(
        "Exiting: error loading config file: config file"
    )  # run refuses it too, before anything else
    for flag in ("--strict.perms=false", "--strict.perms=0"):
        ok = wirebeat("test", "config", "-c", cfg, flag, tmp=tmp_path)
        assert (ok.rc, ok.stdout) == (0, "Config OK\n"), ok
    cfg.chmod(0o640)  # read by the group is fine (libbeat checks writes only)
    assert wirebeat("test", "config", "-c", cfg, tmp=tmp_path).rc == 0
    assert "--strict.perms" in one_line(
        wirebeat("test", "config", "-c", cfg, "--strict.perms=maybe", tmp=tmp_path)
    )


def test_strict_perms_owner_of_the_config_file(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        need("root, to give the file to another user")
    cfg = config(tmp_path)
    os.chown(cfg, 65534, 65534)
    line = one_line(wirebeat("test", "config", "-c", cfg, tmp=tmp_path))
    assert line == (
        f'Exiting: error loading config file: config file ("{cfg}") must be owned by the user '
        "identifier (uid=0) or root"
    )
    assert wirebeat("test", "config", "-c", cfg, "--strict.perms=false", tmp=tmp_path).rc == 0


def test_help_lists_every_command(tmp_path: Path) -> None:
    run = wirebeat("--help", tmp=tmp_path)
    assert run.rc == 0, run
    for command in (
        "run", "devices", "test config", "test output", "export config", "export template",
        "export ilm-policy", "export index-pattern", "export dashboard", "export fields", "setup",
        "keystore create", "keystore add KEY", "keystore list", "keystore remove KEY...", "version", "help",
    ):  # fmt: skip
        assert f"\n  {command} " in run.stdout, command
    for flag in ("--strict.perms", "--force", "--stdin", "-d SELECTORS", "-E KEY=VALUE"):
        assert flag in run.stdout, flag
    assert wirebeat("help", tmp=tmp_path).stdout == run.stdout


def test_test_output_checks_the_file_and_console_outputs(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    run = wirebeat("test", "output", "-c", cfg, tmp=tmp_path)
    assert (run.rc, run.stdout) == (0, "console: stdout...\n  open... OK\n"), run
    out = tmp_path / "out" / "deeper"
    run = wirebeat("test", "output", "-c", cfg, "-E", "output.console.enabled=false",
                   "-E", f"output.file.path={out}", tmp=tmp_path)  # fmt: skip
    assert run.rc == 0, run
    assert run.stdout == f"file: {out}...\n  create directory... OK\n  write a file... OK\n"
    assert out.is_dir() and list(out.iterdir()) == []  # the probe file is gone
    down = wirebeat("test", "output", "-c", cfg, "-E", "output.console.enabled=false",
                    "-E", 'output.elasticsearch.hosts=["http://127.0.0.1:9"]', tmp=tmp_path)  # fmt: skip
    assert down.rc == 1 and "dial up... ERROR dial tcp 127.0.0.1:9: connection refused" in down.stdout, down
