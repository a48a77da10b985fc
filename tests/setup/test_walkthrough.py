"""docs/walkthrough.md, run: every shell block in order, in a copy of this checkout with
wirebeat installed by the walkthrough's own ``pip install .`` (into a virtualenv), against
a real OpenSearch node (Elasticsearch's API), the go-lumber Beats receiver playing Logstash
with the bundled pipeline's output (index from ``@metadata``, ``action => create``), and a
recording Kibana API. Expected-output blocks are checked against what the commands print.

How the document drives the test (HTML comments, invisible on GitHub):

- ``<!-- test: file NAME -->`` before a yaml block: the block is written to NAME;
- ``<!-- test: output -->`` before a text block: each of its lines is a line the previous
  shell block printed (stdout or stderr), in order; ``…`` stands for anything;
- ``<!-- test: background NAME -->`` before a shell block: it keeps running (a second
  terminal), until ``<!-- test: stop NAME -->`` (Ctrl-C: SIGINT, exit status 0);
- ``<!-- test: wait for events -->``: what Logstash received is in the index before the
  next block runs (Logstash takes a moment too).

Host names and ports are replaced by the test servers' (``localhost:9200``,
``localhost:5601``, ``localhost:5044``, the file server's 8000), ``sudo`` is dropped (the
suite runs as root), and ``bin/logstash -f FILE`` starts the stand-in for that pipeline
file. Nothing else is changed (``pip install .`` runs as written, in a virtualenv that
sees the suite's packages): a command that fails here fails for a reader too.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import ROOT, free_port
from tests.interop.ljpeer import Receiver
from tests.interop.opensearch_node import OpenSearchNode, opensearch_fixture  # noqa: F401 (the fixture)
from tests.live_helpers import need_capture
from tests.setup.test_kibana import kibana

pytestmark = pytest.mark.integration

DOC = ROOT / "docs" / "walkthrough.md"
_DIRECTIVE = re.compile(r"<!--\s*test:\s*(.*?)\s*-->")
_FENCE = re.compile(r"^```(\w*)\s*$")


def parse(text: str) -> list[tuple[str, str, str]]:
    """``(kind, directive, body)``: kind is the fence language or ``directive`` for a
    directive that stands alone (stop, wait)."""
    items: list[tuple[str, str, str]] = []
    lines = text.splitlines()
    directive = ""
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _DIRECTIVE.fullmatch(line.strip())
        if m:
            if directive:
                items.append(("directive", directive, ""))
            directive = m.group(1)
            i += 1
            continue
        f = _FENCE.match(line)
        if f:
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            items.append((f.group(1), directive, "\n".join(lines[i + 1 : j])))
            directive = ""
            i = j + 1
            continue
        if line.strip() and directive and not directive.startswith(("file", "output", "background")):
            items.append(("directive", directive, ""))
            directive = ""
        i += 1
    if directive:
        items.append(("directive", directive, ""))
    return items


def expected_lines_found(expected: str, output: str) -> str | None:
    """None when every expected line matches an output line, in order; else the first
    line that does not."""
    got = [line.strip() for line in output.splitlines()]
    pos = 0
    for want in expected.splitlines():
        want = want.strip()
        if not want:
            continue
        pattern = re.compile(".*".join(re.escape(p) for p in want.split("…")))
        while pos < len(got) and not pattern.search(got[pos]):
            pos += 1
        if pos == len(got):
            return want
        pos += 1
    return None


class LogstashStandIn:
    """``bin/logstash -f <pipeline>`` for the bundled Beats → Elasticsearch pipeline: the
    go-lumber receiver as the ``beats`` input, then what the file's ``elasticsearch``
    output does with each event: ``index`` from ``@metadata``, ``action``, ``pipeline``,
    ``@metadata`` left out, ``@version`` added (as Logstash's event model does)."""

    def __init__(self, conf: Path, env: dict[str, str], node: OpenSearchNode, port: int, work: Path) -> None:
        text = conf.read_text()

        def setting(name: str) -> str:
            m = re.search(rf'{name}\s*=>\s*\[?"([^"]*)"', text)
            assert m, f"{conf}: no {name}"
            return re.sub(r"\$\{(\w+):([^}]*)\}", lambda v: env.get(v.group(1), v.group(2)), m.group(1))

        assert "manage_template => false" in text
        self.index = setting("index")
        self.action = setting("action")
        self.hosts = setting("hosts")
        beats_port = setting("port")
        assert beats_port == "5044", beats_port
        assert self.hosts.rstrip("/") == node.url, (self.hosts, node.url)
        self.node = node
        self.receiver = Receiver(work, port=port).start()
        self.forwarded = 0
        self.errors: list[str] = []
        self._offset = 0
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sprintf(self, fmt: str, meta: dict[str, Any]) -> str:
        return re.sub(r"%\{\[@metadata\]\[(\w+)\]\}", lambda m: str(meta.get(m.group(1), "")), fmt)

    def forward(self) -> int:
        """Index what arrived since the last call; return how many events."""
        with self._lock:
            out = self.receiver.files[-1]
            if not out.exists():
                return 0
            with open(out, "rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
            end = data.rfind(b"\n") + 1
            self._offset += end
            lines = [line for line in data[:end].split(b"\n") if line]
            if not lines:
                return 0
            body = []
            for line in lines:
                event = json.loads(line)
                meta = event.pop("@metadata", {})
                event["@version"] = "1"
                action: dict[str, Any] = {"_index": self._sprintf(self.index, meta)}
                if meta.get("pipeline"):
                    action["pipeline"] = meta["pipeline"]
                body += [json.dumps({self.action: action}), json.dumps(event)]
            res = self.node.request("POST", "/_bulk", ("\n".join(body) + "\n").encode())
            if res.get("errors"):
                self.errors += [
                    json.dumps(i)[:300] for i in res["items"] if next(iter(i.values())).get("error")
                ]
            self.forwarded += len(lines)
            return len(lines)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                self.forward()
            except Exception as exc:  # reported by the test
                self.errors.append(repr(exc))

    def drain(self) -> None:
        self.forward()
        self.node.request("POST", "/packetbeat-*/_refresh")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.receiver.stop()


class Background:
    def __init__(self, name: str, command: str, cwd: Path, env: dict[str, str]) -> None:
        self.name = name
        self.log = cwd / f".{name}.log"
        self.out = open(self.log, "wb")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(
            ["bash", "-c", "exec " + command],
            cwd=cwd,
            env=env,
            stdout=self.out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, ready: Any, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited {self.proc.returncode}: {self.text()[-2000:]}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} not ready after {timeout}s: {self.text()[-2000:]}")
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGINT) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)  # Ctrl-C reaches the terminal's process group
        try:
            code = self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(10)
        self.out.close()
        return code


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def copy_checkout(dest: Path) -> None:
    files = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in files:
        if not name:
            continue
        src = ROOT / name.decode()
        if src.is_file() and not name.startswith((b"tests/", b"benchmarks/")):
            target = dest / name.decode()
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)


@pytest.fixture
def servers(opensearch: OpenSearchNode) -> Iterator[dict[str, Any]]:
    with kibana() as kb:
        yield {"opensearch": opensearch, "kibana": kb}


def test_walkthrough(servers: dict[str, Any], tmp_path: Path) -> None:
    need_capture("pcap")  # the walkthrough's config keeps the default type
    node: OpenSearchNode = servers["opensearch"]
    kb = servers["kibana"]
    work = tmp_path / "wirebeat"
    copy_checkout(work)
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=300
    )
    beats_port, www_port = free_port(), free_port()
    subs = [
        (r"\b8000\b", str(www_port)),  # first: a server's port may contain 8000 too
        (r"\bhttp://localhost:9200\b", node.url),
        (r"\blocalhost:9200\b", node.host),
        (r"\blocalhost:5601\b", kb.host),
        (r"\blocalhost:5044\b", f"127.0.0.1:{beats_port}"),
        (r"(^|\n)sudo ", r"\1"),
    ]

    def substitute(text: str) -> str:
        for pattern, repl in subs:
            text = re.sub(pattern, repl, text)
        return text

    env = {
        "PATH": f"{venv / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
    }
    problems: list[str] = []
    background: dict[str, Background] = {}
    logstash: LogstashStandIn | None = None
    last_output = ""
    commands_run = 0
    try:
        for kind, directive, body in parse(DOC.read_text()):
            if kind == "yaml" and directive.startswith("file "):
                (work / directive.split(None, 1)[1]).write_text(substitute(body) + "\n")
            elif kind == "text" and directive == "output":
                missing = expected_lines_found(substitute(body), last_output)
                if missing is not None:
                    problems.append(f"expected output line {missing!r} not printed:\n{last_output[-3000:]}")
            elif kind == "directive" and directive.startswith("stop "):
                name = directive.split(None, 1)[1]
                code = background.pop(name).stop()
                if name == "wirebeat" and code != 0:
                    problems.append(f"wirebeat (live) exited {code} on Ctrl-C")
            elif kind == "sh" and directive.startswith("background "):
                name = directive.split(None, 1)[1]
                command = substitute(body).strip()
                commands_run += 1
                if name == "logstash":
                    words = shlex.split(command)
                    assignments = dict(w.split("=", 1) for w in words if re.match(r"^\w+=", w))
                    rest = [w for w in words if not re.match(r"^\w+=", w)]
                    assert rest[0].endswith("bin/logstash") and rest[1] == "-f", rest
                    logstash = LogstashStandIn(work / rest[2], assignments, node, beats_port, tmp_path)
                    continue
                bg = Background(name, command, work, env)
                background[name] = bg
                try:
                    if name == "wirebeat":
                        bg.wait_for(lambda bg=bg: "is capturing on" in bg.text())
                    else:
                        bg.wait_for(lambda: _port_open(www_port))
                except AssertionError as exc:
                    raise AssertionError("\n\n".join([*problems, str(exc)])) from None
            elif kind == "sh":
                if directive == "wait for events":
                    assert logstash is not None
                    logstash.drain()
                script = substitute(body)
                commands_run += len([c for c in script.splitlines() if c.strip()])
                env_out, pwd_out = tmp_path / ".env", tmp_path / ".pwd"
                r = subprocess.run(
                    ["bash", "-c", f'set -e\n{script}\nenv -0 > "{env_out}"\npwd > "{pwd_out}"'],
                    cwd=work,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                )
                last_output = r.stdout + r.stderr
                if r.returncode != 0:
                    problems.append(f"exit {r.returncode}:\n{script}\n{last_output[-3000:]}")
                    continue
                env = dict(item.split("=", 1) for item in env_out.read_text().split("\0") if "=" in item)
                assert pwd_out.read_text().strip() == str(work), "a block changed directory"
        assert not background, f"never stopped: {list(background)}"
        assert logstash is not None
        logstash.drain()
        assert logstash.errors == []
        # Both replays' and the live capture's events went through "Logstash" into the
        # data stream `setup` created, with the template's mappings.
        res = node.request("GET", "/packetbeat-*/_search?size=100&q=type:http")
        docs = [h["_source"] for h in res["hits"]["hits"]]
        paths = sorted(d["url"]["path"] for d in docs)
        assert "/missing.txt" in paths and paths.count("/index.html") >= 1
        assert {d["@version"] for d in docs} == {"1"} and all("@metadata" not in d for d in docs)
        streams = node.request("GET", "/_data_stream/packetbeat-*")["data_streams"]
        assert [s["name"] for s in streams] == [f"packetbeat-{docs[0]['agent']['version']}"]
        # The dashboards the document describes are the ones `setup --dashboards` loaded.
        imports = [r for r in kb.requests if r.route.endswith("/api/saved_objects/_import")]
        assert len(imports) == 1
        titles = {t.decode() for t in re.findall(rb'"title":\s*"([^"]+)"', imports[0].body)}
        section = DOC.read_text().split("## 7.", 1)[1].split("## 8.", 1)[0]
        section = re.sub(r"\s+", " ", section)
        dashboards = set(re.findall(r"\*\*(\[Packetbeat\][^*]+)\*\*", section))
        panels = set(re.findall(r"(?<![*\w])\*([A-Z][^*]+)\*(?!\*)", section))
        assert len(dashboards) == 17 and dashboards <= titles, dashboards - titles
        assert len(panels) > 20 and panels <= titles, panels - titles
    finally:
        for bg in background.values():
            bg.stop(signal.SIGKILL)
        if logstash is not None:
            logstash.stop()
    assert commands_run >= 15
    assert problems == [], "\n\n".join(problems)
