"""Compare wirebeat's events with real Packetbeat's on the same captures and config.

    scripts/compare-packetbeat [options] CAPTURE...

Both tools run on every capture with the same ``packetbeat.yml`` (by default: every protocol on
the ports of Packetbeat's shipped packetbeat.yml plus the ports Packetbeat's own system tests
use for the shared captures; ``-c FILE`` takes any config). Packetbeat is the pinned 9.3.0 that
``scripts/build-packetbeat`` builds; wirebeat runs through its real CLI (``-t -I``, output.file)
in one worker process for all captures. Events are paired by type, client address, start time
and query (flows by flow id and final flag), agent-describing fields are left out, and every
remaining difference is either matched by an entry of ``docs/differences.md`` or reported as
undocumented. Exit status: 0 when every difference is documented, 1 otherwise, 2 when the
comparison could not run (no Packetbeat, a tool failed).

``--detailed`` turns on every field a protocol can send (``send_request``/``send_response``,
HTTP ``send_all_headers``, Thrift on the framed transport). Events of protocols wirebeat does
not decode yet (not in ``protocols.registry.available()``) are counted as "not built" and are no
failure until the protocol lands. The shipped config's processors (host, cloud and docker
metadata, MIME types of bodies that are not sent by default) are left out.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import copy
import datetime
import fnmatch
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from capture import CaptureFile
from protocols.net import TCP_ACK, TCP_SYN, ip_to_str

ROOT = Path(__file__).resolve().parent.parent
DIFFERENCES = ROOT / "docs" / "differences.md"
BUILD_SCRIPT = ROOT / "scripts" / "build-packetbeat"
PACKETBEAT_VERSION = "9.3.0"

#: Fields that describe the agent, not the traffic: left out of the comparison.
IGNORED_PREFIXES = ("agent.", "host.")
IGNORED_FIELDS = frozenset({"@metadata.version", "ecs.version", "event.ingested"})

#: Packetbeat's shipped packetbeat.yml: every protocol on its default ports.
SHIPPED_PROTOCOLS: list[dict[str, Any]] = [
    {"type": "icmp", "enabled": True},
    {"type": "amqp", "ports": [5672]},
    {"type": "cassandra", "ports": [9042]},
    {"type": "dhcpv4", "ports": [67, 68]},
    {"type": "dns", "ports": [53]},
    {"type": "http", "ports": [80, 8080, 8000, 5000, 8002]},
    {"type": "memcache", "ports": [11211]},
    {"type": "mysql", "ports": [3306, 3307]},
    {"type": "pgsql", "ports": [5432]},
    {"type": "redis", "ports": [6379]},
    {"type": "thrift", "ports": [9090]},
    {"type": "mongodb", "ports": [27017]},
    {"type": "nfs", "ports": [2049]},
    {"type": "tls", "ports": [443, 993, 995, 5223, 8443, 8883, 9243]},
    {"type": "sip", "ports": [5060]},
]

#: Ports Packetbeat's own system tests (tests/system/config/packetbeat.yml.j2 and test_*.py)
#: give the shared captures where they differ from the shipped ones: wsgi_loopback (8888) and
#: http_100_continue (9200) are HTTP, redis_one_transaction is Redis on 6380,
#: mongodb_op_msg_opcode is MongoDB on 9991.
TEST_PORTS: dict[str, list[int]] = {"http": [8888, 9200], "redis": [6380], "mongodb": [9991]}

#: What both tools get on top of any config: file output, no flush delay (or Packetbeat exits
#: under -I before publishing), and a shutdown pause that lets Packetbeat's publisher drain
#: (without it Packetbeat loses events at random; 250 ms sufficed for every shared capture).
SHUTDOWN_TIMEOUT = "1s"


def shutdown_timeout(capture: Path) -> str:
    """Packetbeat's pause after reading ``capture``: 300 ms, and 100 ms more per MB (up to 3 s)."""
    mb = capture.stat().st_size / 1e6
    return f"{min(3000, 300 + int(mb * 100))}ms"


class CompareError(Exception):
    """The comparison could not run (exit status 2)."""


# -- configuration ------------------------------------------------------------------------


def default_protocols() -> list[dict[str, Any]]:
    """The comparison's protocol list: shipped ports plus the test ports of the shared captures."""
    out = copy.deepcopy(SHIPPED_PROTOCOLS)
    for p in out:
        p.setdefault("ports", [])
        p["ports"] = list(p["ports"]) + [x for x in TEST_PORTS.get(p["type"], []) if x not in p["ports"]]
        if p["type"] == "icmp":
            del p["ports"]
    return out


def default_config() -> dict[str, Any]:
    """Packetbeat's shipped packetbeat.yml (interfaces, flows, protocols; not its outputs and
    host-describing processors), with the test ports of the shared captures."""
    return {
        "packetbeat.interfaces.device": "any",
        "packetbeat.interfaces.internal_networks": ["private"],
        "packetbeat.flows": {"timeout": "30s", "period": "10s"},
        "packetbeat.protocols": default_protocols(),
    }


def list_form(base: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with its protocols as one ``packetbeat.protocols`` list (Packetbeat 8 form),
    whether they were written nested (``packetbeat: {protocols: ...}``) or as the 6.x mapping
    of protocol names."""
    cfg = copy.deepcopy(dict(base))
    protos = cfg.pop("packetbeat.protocols", None)
    nested = cfg.get("packetbeat")
    if isinstance(nested, dict) and "protocols" in nested:
        nested = dict(nested)
        protos = nested.pop("protocols")
        cfg["packetbeat"] = nested
    if isinstance(protos, dict):
        protos = [{"type": name, **(opts or {})} for name, opts in protos.items()]
    cfg["packetbeat.protocols"] = list(protos or [])
    return cfg


def detailed(base: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with every field a protocol can send: ``send_request``/``send_response`` for every
    protocol, ``send_all_headers`` for HTTP, and Thrift on the framed transport unless a
    transport is given (the shipped config decodes the socket transport)."""
    cfg = list_form(base)
    for p in cfg["packetbeat.protocols"]:
        if p.get("type") == "icmp":
            continue
        p.setdefault("send_request", True)
        p.setdefault("send_response", True)
        if p.get("type") == "http":
            p.setdefault("send_all_headers", True)
        if p.get("type") == "thrift":
            p.setdefault("transport_type", "framed")
    return cfg


def with_protocols(base: Mapping[str, Any], protocols: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``base`` (list form of ``packetbeat.protocols``) with protocol entries merged in: the
    ports join the protocol's entry (Packetbeat takes one entry per protocol), other options
    replace its options, and the ports leave any other protocol that claimed them."""
    cfg = list_form(base)
    plist = [dict(p) for p in cfg["packetbeat.protocols"]]
    for entry in protocols:
        extra: dict[str, Any] = copy.deepcopy(dict(entry))
        taken = set(extra.get("ports", []))
        for p in plist:
            if p.get("type") != extra["type"] and "ports" in p:
                p["ports"] = [x for x in p["ports"] if x not in taken]
        same = next((p for p in plist if p.get("type") == extra["type"]), None)
        if same is None:
            plist.append(extra)
            continue
        ports = same.setdefault("ports", [])
        ports += [x for x in extra.pop("ports", []) if x not in ports]
        same.update(extra)
    cfg["packetbeat.protocols"] = plist
    return cfg


def _strip(cfg: dict[str, Any], *prefixes: str) -> dict[str, Any]:
    """Remove settings at or below dotted ``prefixes`` whether written nested or dotted."""
    out: dict[str, Any] = {}
    for key, value in cfg.items():
        if any(key == p or key.startswith(p + ".") for p in prefixes):
            continue
        inner = [p[len(key) + 1 :] for p in prefixes if p.startswith(key + ".")]
        if inner and isinstance(value, dict):
            value = _strip(value, *inner)
        out[key] = value
    return out


def run_config(
    cfg: Mapping[str, Any], outdir: Path, name: str, shutdown: str = SHUTDOWN_TIMEOUT
) -> dict[str, Any]:
    """``cfg`` as one tool runs it: output.file into ``outdir``, data and logs beside it."""
    out = _strip(
        dict(cfg),
        "output",
        "path",
        "queue",
        "packetbeat.shutdown_timeout",
        "logging.level",
        "logging.to_files",
        "logging.to_stderr",
    )
    out["output.file"] = {
        "path": str(outdir / "out"),
        "filename": name,
        "rotate_every_kb": 1024 * 1024,
        "number_of_files": 1024,
    }
    out["queue.mem.flush.timeout"] = "0s"
    out["packetbeat.shutdown_timeout"] = shutdown
    out["path.data"] = str(outdir / "data")
    out["path.logs"] = str(outdir / "logs")
    out["logging.level"] = "warning"
    return out


def load_config(path: str | Path) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except OSError as exc:
        raise CompareError(f"cannot read {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise CompareError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise CompareError(f"{path}: not a YAML mapping")
    return data


def _write_yaml(path: Path, cfg: Mapping[str, Any]) -> str:
    text = yaml.safe_dump(dict(cfg), sort_keys=True, default_flow_style=False)
    path.write_text(text, encoding="utf-8")
    return text


def read_events(outdir: Path) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    files = sorted(outdir.glob("*.ndjson*"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    for p in files:
        with open(p, encoding="utf-8") as f:
            events += [json.loads(line) for line in f if line.strip()]
    return events


# -- running Packetbeat -------------------------------------------------------------------


def find_packetbeat() -> Path:
    """The pinned Packetbeat binary (``WIREBEAT_PACKETBEAT`` wins); built on first use."""
    env = os.environ.get("WIREBEAT_PACKETBEAT")
    if env:
        if not os.access(env, os.X_OK):
            raise CompareError(f"WIREBEAT_PACKETBEAT={env} is not an executable")
        return Path(env)
    proc = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True)
    if proc.returncode != 0:
        msg = proc.stderr.strip().splitlines()[-1:] or [f"exit status {proc.returncode}"]
        raise CompareError(msg[0])
    return Path(proc.stdout.strip().splitlines()[-1])


#: Bumped when the way Packetbeat is run changes (its cached events are then ignored).
CACHE_VERSION = "2"


def _cache_dir(binary: Path) -> Path:
    return binary.parent / "events"


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(hashlib.sha256(p).digest())
    return h.hexdigest()[:32]


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.digest()


class PacketbeatCrashed(CompareError):
    """Packetbeat died of a Go panic in a protocol decoder: ``protocol`` (its
    ``packetbeat/protos/<name>``), ``where`` (the function), ``panic`` (the message)."""

    def __init__(self, capture: Path, protocol: str, where: str, panic: str) -> None:
        super().__init__(f"packetbeat crashed on {capture}: {panic} in {where}")
        self.protocol = protocol
        self.where = where
        self.panic = panic

    _FRAME = re.compile(r"^github\.com/elastic/beats/v7/packetbeat/protos/(\w+)\.(\S+?)\(")

    @classmethod
    def parse(cls, capture: Path, stderr: str) -> PacketbeatCrashed | None:
        """The crash ``stderr`` tells of, if it is a panic in a protocol decoder."""
        lines = stderr.splitlines()
        at = next((i for i, line in enumerate(lines) if line.startswith("panic: ")), None)
        if at is None:
            return None
        for line in lines[at + 1 :]:
            m = cls._FRAME.match(line)
            if m:
                return cls(capture, m.group(1), f"{m.group(1)}.{m.group(2)}", lines[at][7:].strip())
        return None


def run_packetbeat(
    binary: Path, capture: Path, cfg: Mapping[str, Any], workdir: Path, cache: bool = True
) -> list[dict[str, Any]]:
    """Packetbeat's events for one capture (cached by binary, config and capture content)."""
    workdir.mkdir(parents=True, exist_ok=True)
    text = yaml.safe_dump(dict(cfg), sort_keys=True)
    st = binary.stat()
    version = f"{CACHE_VERSION}:{binary}:{st.st_size}:{st.st_mtime_ns}"
    key = _digest(version.encode(), text.encode(), _file_digest(capture))
    cached = _cache_dir(binary) / f"{key}.json"
    if cache and cached.exists():
        data: list[dict[str, Any]] = json.loads(cached.read_text(encoding="utf-8"))
        return data
    full = run_config(cfg, workdir, "packetbeat", shutdown_timeout(capture))
    cfg_path = workdir / "packetbeat.yml"
    _write_yaml(cfg_path, full)
    proc = subprocess.run(
        [str(binary), "-e", "-t", "-I", str(capture), "-c", str(cfg_path), "--strict.perms=false"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        crash = PacketbeatCrashed.parse(capture, proc.stderr)
        if crash is not None:
            raise crash
        tail = "\n".join(proc.stderr.strip().splitlines()[-3:])
        raise CompareError(f"packetbeat failed on {capture} (exit {proc.returncode}): {tail}")
    events = read_events(workdir / "out")
    _check_published(proc.stderr, len(events), capture)
    if cache:
        _cache_dir(binary).mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(events), encoding="utf-8")
        tmp.replace(cached)
    return events


def _check_published(stderr: str, n: int, capture: Path) -> None:
    """Packetbeat's final metrics must account for every event it wrote (nothing in flight)."""
    for line in stderr.splitlines():
        if "Total metrics" not in line:
            continue
        try:
            doc = json.loads(line)
            events = doc["monitoring"]["metrics"]["libbeat"]["pipeline"]["events"]
        except (ValueError, KeyError, TypeError):
            return
        total, active = events.get("total", n), events.get("active", 0)
        if active or total != n:
            raise CompareError(
                f"packetbeat on {capture}: {total} events in its pipeline, {active} still active, "
                f"{n} written; raise packetbeat.shutdown_timeout"
            )


def packetbeat_all(
    binary: Path,
    jobs: Sequence[tuple[Path, Mapping[str, Any]]],
    workdir: Path,
    parallel: int = 8,
    cache: bool = True,
) -> list[list[dict[str, Any]] | PacketbeatCrashed]:
    """Packetbeat over many captures at once (it mostly sleeps through its shutdown pause);
    a capture Packetbeat crashes on gives the crash instead of events."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        futures = [
            pool.submit(_events_or_crash, binary, cap, cfg, workdir / f"pb-{i}", cache)
            for i, (cap, cfg) in enumerate(jobs)
        ]
        return [f.result() for f in futures]


def _events_or_crash(
    binary: Path, capture: Path, cfg: Mapping[str, Any], workdir: Path, cache: bool
) -> list[dict[str, Any]] | PacketbeatCrashed:
    try:
        return run_packetbeat(binary, capture, cfg, workdir, cache)
    except PacketbeatCrashed as crash:
        return crash


# -- running wirebeat ---------------------------------------------------------------------


def wirebeat_worker(jobs_file: str) -> int:
    """Run wirebeat's CLI once per job, in this process (``--wirebeat-worker``)."""
    from shipper.agent.cli import Exit, dispatch

    jobs = json.loads(Path(jobs_file).read_text(encoding="utf-8"))
    status = 0
    for job in jobs:
        argv = ["run", "-t", "-I", job["capture"], "-c", job["config"]]
        try:
            code = dispatch(argv)
        except Exit as exc:
            print(f"wirebeat on {job['capture']}: {exc.message}", file=sys.stderr)
            code = exc.code
        except Exception as exc:
            print(f"wirebeat on {job['capture']}: {type(exc).__name__}: {exc}", file=sys.stderr)
            code = 1
        Path(job["status"]).write_text(str(code), encoding="utf-8")
        status = status or code
    return status


def wirebeat_all(
    jobs: Sequence[tuple[Path, Mapping[str, Any]]], workdir: Path, root: Path = ROOT
) -> list[list[dict[str, Any]]]:
    """wirebeat (the checkout at ``root``) over many captures in one worker process."""
    specs = []
    for i, (cap, cfg) in enumerate(jobs):
        d = workdir / f"wb-{i}"
        d.mkdir(parents=True, exist_ok=True)
        cfg_path = d / "wirebeat.yml"
        _write_yaml(cfg_path, run_config(cfg, d, "wirebeat"))
        specs.append(
            {"capture": str(Path(cap).resolve()), "config": str(cfg_path), "status": str(d / "status")}
        )
    jobs_file = workdir / "wirebeat-jobs.json"
    jobs_file.write_text(json.dumps(specs), encoding="utf-8")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(ROOT), *filter(None, [env.get("PYTHONPATH")])])
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.pbcompare", "--wirebeat-worker", str(jobs_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(workdir),
        timeout=3600,
    )
    out = []
    for (cap, _), spec in zip(jobs, specs, strict=True):
        status = Path(spec["status"])
        if not status.exists() or status.read_text() != "0":
            tail = "\n".join(proc.stderr.strip().splitlines()[-5:])
            raise CompareError(f"wirebeat failed on {cap}: {tail}")
        out.append(read_events(status.parent / "out"))
    return out


# -- normalising and pairing --------------------------------------------------------------


def flatten(doc: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested objects → dotted leaves; lists stay whole values. An empty object is no field
    (Elasticsearch indexes nothing for it), so it is left out."""
    out: dict[str, Any] = {}
    for k, v in doc.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, path + "."))
        else:
            out[path] = v
    return out


def normalise(event: Mapping[str, Any]) -> dict[str, Any]:
    flat = flatten(event)
    return {
        k: v
        for k, v in flat.items()
        if k not in IGNORED_FIELDS and not k.startswith(IGNORED_PREFIXES) and k not in ("agent", "host")
    }


def _canon(v: Any) -> str:
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass
class Event:
    capture: str
    doc: dict[str, Any]
    flat: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.flat = normalise(self.doc)

    @property
    def type(self) -> str:
        return str(self.doc.get("type", "?"))

    def get(self, path: str) -> Any:
        return self.flat.get(path)

    def describe(self) -> str:
        f = self.flat
        if self.type == "flow":
            return f"flow {f.get('flow.id')} final={f.get('flow.final')}"
        client = f"{f.get('client.ip', f.get('source.ip'))}:{f.get('client.port', f.get('source.port'))}"
        what = f.get("query") or f.get("method") or ""
        return f"{self.type} {client} {f.get('event.start', f.get('@timestamp'))} {str(what)[:60]!r}"


def _client(e: Event) -> tuple[Any, Any]:
    f = e.flat
    return f.get("client.ip", f.get("source.ip")), f.get("client.port", f.get("source.port"))


#: What tells a protocol's requests apart where its events have no ``query`` or ``method``.
REQUEST_IDENTITY: dict[str, tuple[str, ...]] = {
    "cassandra": ("cassandra.request.headers.stream", "cassandra.request.query"),
}


def _query(e: Event) -> str:
    f = e.flat
    q = f.get("query") or f.get("method")
    if not q and e.type in REQUEST_IDENTITY:
        q = " ".join(str(f.get(k, "")) for k in REQUEST_IDENTITY[e.type]).strip()
    return str(q or "")


def _start(e: Event) -> str:
    return str(e.flat.get("event.start") or e.flat.get("@timestamp") or "")


#: Pairing passes, strictest first: what must be equal for two events to pair.
PASSES = (
    lambda e: (e.type, *_client(e), _start(e), _query(e)),
    lambda e: (e.type, *_client(e), _start(e)),
    lambda e: (e.type, *_client(e), _query(e)),
)


def _order(e: Event) -> tuple[str, str]:
    """Start time, then output order (each tool writes a connection's events in order)."""
    return (_start(e), str(e.flat.get("@timestamp", "")))


#: Events sharing a pairing key are paired by likeness up to this many, else in order.
SIMILAR_MAX = 64


def _likeness(a: Event, b: Event) -> int:
    """How many fields two events have the same (higher is more alike)."""
    return sum(1 for k, v in a.flat.items() if k in b.flat and _canon(v) == _canon(b.flat[k]))


def pair(
    pb: Sequence[Event], wb: Sequence[Event]
) -> tuple[list[tuple[Event, Event]], list[Event], list[Event]]:
    """Pair Packetbeat's events with wirebeat's, whatever order either wrote them in.

    Flows pair by flow id and final flag (the n-th report of a flow with the n-th); every
    other event by type, client address, start time and query, then by a looser key for what
    is left (start time alone, then query alone), so that an event whose query or start
    differs shows up as a pair with differences instead of a missing and an extra event."""
    pairs: list[tuple[Event, Event]] = []
    pb_left = sorted(pb, key=_order)
    wb_left = sorted(wb, key=_order)
    flows_pb = [e for e in pb_left if e.type == "flow"]
    flows_wb = [e for e in wb_left if e.type == "flow"]
    flow_key: list[Any] = [lambda e: (e.flat.get("flow.id"), e.flat.get("flow.final"))]
    todo: list[tuple[list[Event], list[Event], Sequence[Any]]] = [(flows_pb, flows_wb, flow_key)]
    todo.append(([e for e in pb_left if e.type != "flow"], [e for e in wb_left if e.type != "flow"], PASSES))
    missing: list[Event] = []
    extra: list[Event] = []
    for a, b, keys in todo:
        for key in keys:
            groups_b: dict[Any, list[Event]] = defaultdict(list)
            for e in b:
                groups_b[key(e)].append(e)
            rest_a = []
            for e in a:
                g = groups_b.get(key(e))
                if not g:
                    rest_a.append(e)
                    continue
                best = 0
                if 1 < len(g) <= SIMILAR_MAX:
                    scores = [_likeness(e, x) for x in g]
                    best = scores.index(max(scores))
                pairs.append((e, g.pop(best)))
            a = rest_a
            b = [e for g in groups_b.values() for e in g]
        missing += a
        extra += sorted(b, key=_order)
    return pairs, missing, extra


# -- documented differences ---------------------------------------------------------------

#: Packetbeat died on the capture (a Go panic): nothing of it can be compared. Its ``field``
#: is the Packetbeat function that panicked (``thrift.(*thriftPlugin).readStruct``).
CRASH = "packetbeat-crash"
KINDS = ("extra-field", "missing-field", "value", "extra-event", "missing-event", CRASH)
FIELD_KINDS = ("extra-field", "missing-field", "value")
CONNECTION_FACTS = ("packetbeat-silent", "packetbeat-unpaired", "port-reused")
_KEYS = {
    "protocol",
    "kind",
    "fields",
    "when",
    "unless",
    "when_packetbeat",
    "packetbeat",
    "wirebeat",
    "after",
    "with",
    "connection",
}


@dataclass
class Documented:
    """One ``### <protocol>/<slug>`` entry of docs/differences.md (its format is described at
    the top of that file)."""

    slug: str
    protocol: str
    kinds: tuple[str, ...]
    fields: tuple[str, ...] = ()
    when: dict[str, Any] = field(default_factory=dict)
    unless: dict[str, Any] = field(default_factory=dict)
    when_packetbeat: dict[str, Any] = field(default_factory=dict)
    packetbeat: Any = None
    wirebeat: Any = None
    after: str = ""
    with_: str = ""
    connection: str = ""
    used: int = 0

    @property
    def cause(self) -> str:
        """The entry this one follows from (``after`` or ``with``), if any."""
        return self.after or self.with_

    def matches_protocol(self, proto: str) -> bool:
        return self.protocol in ("*", proto)

    def matches_field(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pat) for pat in self.fields)


_SECTION = re.compile(r"^### +(\S+)\s*$")
_FENCE = re.compile(r"^```(yaml|yml)\s*$")


def parse_differences(text: str, source: str = "docs/differences.md") -> list[Documented]:
    """The keyed entries of differences.md; a malformed entry is an error, not ignored."""
    entries: list[Documented] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = _SECTION.match(lines[i])
        i += 1
        if not m:
            continue
        slug = m.group(1)
        while i < len(lines) and not lines[i].strip():
            i += 1
        if i >= len(lines) or not _FENCE.match(lines[i].strip()):
            raise CompareError(f"{source}: ### {slug}: no ```yaml block right after the heading")
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        try:
            block = yaml.safe_load("\n".join(lines[i + 1 : j])) or {}
        except yaml.YAMLError as exc:
            raise CompareError(f"{source}: {slug}: {exc}") from None
        i = j + 1
        entries.append(_entry(slug, block, source))
    slugs = [e.slug for e in entries]
    for e in entries:
        if slugs.count(e.slug) > 1:
            raise CompareError(f"{source}: {e.slug} is used twice")
        if e.after and e.with_:
            raise CompareError(f"{source}: {e.slug}: after and with exclude each other")
        if e.cause and e.cause not in slugs:
            raise CompareError(f"{source}: {e.slug}: {e.cause} is no entry")
        if e.cause and entries[slugs.index(e.cause)].cause:
            raise CompareError(f"{source}: {e.slug}: {e.cause} must be an entry without after/with")
    return entries


def _entry(slug: str, block: Any, source: str) -> Documented:
    where = f"{source}: {slug}"
    if not isinstance(block, dict):
        raise CompareError(f"{where}: the yaml block is not a mapping")
    unknown = set(block) - _KEYS
    if unknown:
        raise CompareError(f"{where}: unknown keys {sorted(unknown)}")
    proto = block.get("protocol")
    kinds = block.get("kind")
    kinds = [kinds] if isinstance(kinds, str) else kinds
    if not proto or not kinds or any(k not in KINDS for k in kinds):
        raise CompareError(f"{where}: needs protocol and kind (one or a list of {', '.join(KINDS)})")
    fields = block.get("fields") or []
    if isinstance(fields, str):
        fields = [fields]
    if any(k in FIELD_KINDS or k == CRASH for k in kinds) and not fields:
        raise CompareError(f"{where}: kind {'/'.join(kinds)} needs fields")
    event_keys = ["when", "unless", "when_packetbeat", "packetbeat", "wirebeat", "connection"]
    event_keys += ["after", "with"]
    if CRASH in kinds and any(block.get(k) for k in event_keys):
        raise CompareError(f"{where}: kind {CRASH} has no event to put conditions on")
    if slug.split("/", 1)[0] != proto and not (proto == "*" and slug.startswith("general/")):
        raise CompareError(
            f"{where}: the slug must start with the protocol ({proto}/..., or general/ for '*')"
        )
    for key in ("when", "unless", "when_packetbeat"):
        if not isinstance(block.get(key) or {}, dict):
            raise CompareError(f"{where}: {key} must map field names to patterns")
    conn = block.get("connection") or ""
    if conn and conn not in CONNECTION_FACTS:
        raise CompareError(f"{where}: connection must be one of {', '.join(CONNECTION_FACTS)}")
    return Documented(
        slug=slug,
        protocol=str(proto),
        kinds=tuple(str(k) for k in kinds),
        fields=tuple(str(f) for f in fields),
        when=dict(block.get("when") or {}),
        unless=dict(block.get("unless") or {}),
        when_packetbeat=dict(block.get("when_packetbeat") or {}),
        packetbeat=block.get("packetbeat"),
        wirebeat=block.get("wirebeat"),
        after=str(block.get("after") or ""),
        with_=str(block.get("with") or ""),
        connection=str(conn),
    )


def load_differences(path: Path = DIFFERENCES) -> list[Documented]:
    return parse_differences(path.read_text(encoding="utf-8"), str(path))


def _render(v: Any) -> str:
    return v if isinstance(v, str) else _canon(v)


_COMPARISON = re.compile(r"^(<=|>=|<|>|!=|==)\s*(-?\d+(?:\.\d+)?)$")


def _match_one(value: Any, pattern: Any) -> bool:
    if isinstance(pattern, (bool, int, float)):
        return _canon(value) == _canon(pattern)
    m = _COMPARISON.match(str(pattern))
    if m:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        op, num = m.group(1), float(m.group(2))
        return {
            "<": value < num,
            "<=": value <= num,
            ">": value > num,
            ">=": value >= num,
            "!=": value != num,
            "==": value == num,
        }[op]
    texts = [_render(value)] + ([_render(x) for x in value] if isinstance(value, list) else [])
    return any(fnmatch.fnmatchcase(t, str(pattern)) for t in texts)


def value_matches(value: Any, pattern: Any, present: bool = True) -> bool:
    """``pattern``: a glob against the value as text (strings as they are, everything else as
    JSON; a list value matches when the whole list or any element does), a number comparison
    (``">32767"``, ``"<=0"``, ``"!=0"``), a YAML number or boolean (equal), a list of these
    (any may match), or ``null`` ("the field is absent")."""
    if pattern is None:
        return not present
    if not present:
        return False
    pats = pattern if isinstance(pattern, list) else [pattern]
    return any(_match_one(value, p) for p in pats)


_FIELD_REF = re.compile(r"^(==|!=)@(\S+)$")


def _holds(e: Event, name: str, pattern: Any) -> bool:
    """``pattern`` on the field ``name`` of ``e``; ``"==@other"``/``"!=@other"`` compare it with
    another field of the same event (the field must be there; the other may be absent)."""
    m = _FIELD_REF.match(pattern) if isinstance(pattern, str) else None
    if m is None:
        return value_matches(e.flat.get(name), pattern, name in e.flat)
    if name not in e.flat:
        return False
    other = m.group(2)
    same = other in e.flat and _canon(e.flat[name]) == _canon(e.flat[other])
    return same if m.group(1) == "==" else not same


def _when(cond: Mapping[str, Any], e: Event | None) -> bool:
    if e is None:
        return not cond
    return all(_holds(e, k, pat) for k, pat in cond.items())


def _unless(cond: Mapping[str, Any], e: Event) -> bool:
    return any(_holds(e, k, pat) for k, pat in cond.items())


@dataclass
class Diff:
    """One difference: a field of a pair, or an unpaired event."""

    kind: str
    capture: str
    protocol: str
    field: str = ""
    pb: Event | None = None
    wb: Event | None = None
    doc: Documented | None = None
    hint: str = ""

    @property
    def event(self) -> Event:
        e = self.wb if self.wb is not None else self.pb
        assert e is not None
        return e

    def pb_value(self) -> Any:
        return self.pb.flat.get(self.field) if self.pb is not None else None

    def wb_value(self) -> Any:
        return self.wb.flat.get(self.field) if self.wb is not None else None

    def line(self) -> str:
        tag = f"[{self.doc.slug}]" if self.doc is not None else "UNDOCUMENTED"
        if self.kind == CRASH:  # (``hint``: the panic's message)
            return f"{tag} {self.capture}: Packetbeat crashed in {self.field}: {self.hint or 'panic'}"
        if self.doc is None and self.hint:
            tag += f" ({self.hint})"
        ev = self.pb if self.pb is not None else self.wb
        assert ev is not None
        head = f"{tag} {self.capture}: {ev.describe()}"
        if self.kind == "missing-event":
            return f"{head}: missing (only Packetbeat has it)"
        if self.kind == "extra-event":
            return f"{head}: extra (only wirebeat has it)"
        pbv = _short(self.pb_value()) if self.kind != "extra-field" else "(absent)"
        wbv = _short(self.wb_value()) if self.kind != "missing-field" else "(absent)"
        return f"{head}: {self.field}: packetbeat {pbv} | wirebeat {wbv}"


def _short(v: Any, n: int = 160) -> str:
    s = _canon(v)
    return s if len(s) <= n else s[: n - 3] + "..."


def field_diffs(capture: str, pb: Event, wb: Event) -> list[Diff]:
    out = []
    for name in sorted(set(pb.flat) | set(wb.flat)):
        if name not in wb.flat:
            kind = "missing-field"
        elif name not in pb.flat:
            kind = "extra-field"
        elif _canon(pb.flat[name]) != _canon(wb.flat[name]):
            kind = "value"
        else:
            continue
        out.append(Diff(kind, capture, pb.type, name, pb, wb))
    return out


def connection_of(e: Event) -> tuple[Any, ...]:
    """The connection (or flow) an event belongs to, the same from both tools."""
    f = e.flat
    cid = f.get("network.community_id")
    if cid:
        return (e.type, cid)
    ends = sorted(
        [
            (str(f.get("source.ip")), str(f.get("source.port"))),
            (str(f.get("destination.ip")), str(f.get("destination.port"))),
        ]
    )
    return (e.type, f.get("network.transport"), *ends)


def _endpoints(e: Event) -> tuple[tuple[str, str], ...]:
    f = e.flat
    ends = [
        (str(f.get("source.ip")), str(f.get("source.port"))),
        (str(f.get("destination.ip")), str(f.get("destination.port"))),
    ]
    return tuple(sorted(ends))


def tcp_reuse_starts(capture: Path) -> dict[tuple[tuple[str, str], ...], list[str]]:
    """For each TCP address and port pair of the capture, when (ISO, ms) a connection after
    the first began on it: a SYN (without ACK) whose initial sequence number differs from the
    previous SYN's there (a retransmitted SYN is no new connection)."""
    last_isn: dict[tuple[tuple[str, str], ...], int] = {}
    starts: dict[tuple[tuple[str, str], ...], list[str]] = {}
    with contextlib.suppress(Exception), CaptureFile(str(capture)) as reader:
        for ts, lt, frame, _wl in reader:
            found = _tcp_syn(lt, frame)
            if found is None:
                continue
            key, isn = found
            if key in last_isn and last_isn[key] != isn:
                stamp = datetime.datetime.fromtimestamp(ts // 1_000_000 / 1000, datetime.UTC)
                starts.setdefault(key, []).append(stamp.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z")
            last_isn[key] = isn
    return starts


def _tcp_syn(lt: int, b: bytes) -> tuple[tuple[tuple[str, str], ...], int] | None:
    """(endpoints, sequence number) of a TCP SYN without ACK, else None."""
    if lt == 1:
        off, et = 14, int.from_bytes(b[12:14], "big")
        while et in (0x8100, 0x88A8) and len(b) >= off + 4:
            et, off = int.from_bytes(b[off + 2 : off + 4], "big"), off + 4
    elif lt == 113:
        off, et = 16, int.from_bytes(b[14:16], "big")
    elif lt == 276:
        off, et = 20, int.from_bytes(b[0:2], "big")
    elif lt in (0, 108):
        off, et = 4, 0x0800 if (b[:4] in (b"\x02\x00\x00\x00", b"\x00\x00\x00\x02")) else 0x86DD
    elif lt in (12, 14, 101):
        off, et = 0, 0x0800 if b[:1] and b[0] >> 4 == 4 else 0x86DD
    else:
        return None
    if et == 0x0800 and len(b) >= off + 20 and b[off + 9] == 6:
        src, dst = b[off + 12 : off + 16], b[off + 16 : off + 20]
        tcp = off + (b[off] & 0xF) * 4
    elif et == 0x86DD and len(b) >= off + 40 and b[off + 6] == 6:
        src, dst = b[off + 8 : off + 24], b[off + 24 : off + 40]
        tcp = off + 40
    else:
        return None
    if len(b) < tcp + 14 or b[tcp + 13] & (TCP_SYN | TCP_ACK) != TCP_SYN:
        return None
    sport, dport = int.from_bytes(b[tcp : tcp + 2], "big"), int.from_bytes(b[tcp + 2 : tcp + 4], "big")
    a = (ip_to_str(src), str(sport))  # as the events write addresses
    z = (ip_to_str(dst), str(dport))
    return (a, z) if a <= z else (z, a), int.from_bytes(b[tcp + 4 : tcp + 8], "big")


class Context:
    """What entries may ask about beyond one event: the connection it travelled on."""

    def __init__(
        self,
        pb: Sequence[Event],
        pairs: Sequence[tuple[Event, Event]],
        reuse: dict[tuple[tuple[str, str], ...], list[str]] | None = None,
    ) -> None:
        self.pb_connections = {connection_of(e) for e in pb}
        self.paired_connections = {connection_of(a) for a, _ in pairs}
        #: TCP address and port pairs → when later connections on them began.
        self.reuse = reuse or {}
        #: (slug, connection) → the earliest start of an event a cause entry documented.
        self.causes: dict[tuple[str, tuple[Any, ...]], str] = {}

    def fact(self, name: str, e: Event) -> bool:
        if name == "packetbeat-silent":
            return connection_of(e) not in self.pb_connections
        if name == "packetbeat-unpaired":
            return connection_of(e) not in self.paired_connections
        if name == "port-reused":
            later = self.reuse.get(_endpoints(e))
            return later is not None and later[0] <= _start(e)
        return False

    def note_cause(self, slug: str, e: Event) -> None:
        key = (slug, connection_of(e))
        start = _start(e)
        if key not in self.causes or start < self.causes[key]:
            self.causes[key] = start

    def after(self, slug: str, e: Event) -> bool:
        since = self.causes.get((slug, connection_of(e)))
        return since is not None and _start(e) >= since

    def with_(self, slug: str, e: Event) -> bool:
        return (slug, connection_of(e)) in self.causes


def _applies(d: Documented, diff: Diff, ctx: Context | None, kind: str) -> bool:
    if kind not in d.kinds or not d.matches_protocol(diff.protocol):
        return False
    if (kind in FIELD_KINDS or kind == CRASH) and not d.matches_field(diff.field):
        return False
    if kind == CRASH:
        return True  # (no event: the entry has no conditions on one)
    if d.when and not _when(d.when, diff.event):
        return False
    if d.unless and _unless(d.unless, diff.event):
        return False
    if d.when_packetbeat and (diff.pb is None or not _when(d.when_packetbeat, diff.pb)):
        return False
    if kind == "value" and d.packetbeat is not None and not value_matches(diff.pb_value(), d.packetbeat):
        return False
    if kind == "value" and d.wirebeat is not None and not value_matches(diff.wb_value(), d.wirebeat):
        return False
    if d.connection and (ctx is None or not ctx.fact(d.connection, diff.event)):
        return False
    if d.after and (ctx is None or not ctx.after(d.after, diff.event)):
        return False
    return not (d.with_ and (ctx is None or not ctx.with_(d.with_, diff.event)))


def document(diff: Diff, entries: Sequence[Documented], ctx: Context | None = None) -> Documented | None:
    """The first entry that explains ``diff`` (its ``used`` count goes up). When none does,
    an entry that would if it listed this kind is remembered as ``diff.hint``."""
    for d in entries:
        if _applies(d, diff, ctx, diff.kind):
            d.used += 1
            return d
    if diff.kind in FIELD_KINDS and not diff.hint:
        for d in entries:
            if any(_applies(d, diff, ctx, k) for k in d.kinds if k in FIELD_KINDS):
                diff.hint = f"{d.slug} would explain it with kind {diff.kind}"
                break
    return None


# -- the comparison -----------------------------------------------------------------------


@dataclass
class ProtocolCounts:
    packetbeat: int = 0
    wirebeat: int = 0
    paired: int = 0
    identical: int = 0
    documented: int = 0  # pairs whose every difference is documented
    undocumented: int = 0  # pairs with an undocumented difference
    missing: int = 0
    missing_documented: int = 0
    extra: int = 0
    extra_documented: int = 0
    crashes: int = 0  # captures Packetbeat died on (nothing of them compared)
    crashes_documented: int = 0
    not_built: bool = False

    def add(self, other: ProtocolCounts) -> None:
        for k in (
            "packetbeat",
            "wirebeat",
            "paired",
            "identical",
            "documented",
            "undocumented",
            "missing",
            "missing_documented",
            "extra",
            "extra_documented",
            "crashes",
            "crashes_documented",
        ):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.not_built = self.not_built or other.not_built

    @property
    def failures(self) -> int:
        if self.not_built:
            return 0
        return (
            self.undocumented
            + (self.missing - self.missing_documented)
            + (self.extra - self.extra_documented)
            + (self.crashes - self.crashes_documented)
        )


@dataclass
class Result:
    """The comparison of one or more captures."""

    protocols: dict[str, ProtocolCounts] = field(default_factory=dict)
    diffs: list[Diff] = field(default_factory=list)
    not_built: set[str] = field(default_factory=set)

    def counts(self, proto: str) -> ProtocolCounts:
        return self.protocols.setdefault(proto, ProtocolCounts())

    def add(self, other: Result) -> None:
        for p, c in other.protocols.items():
            self.counts(p).add(c)
        self.diffs += other.diffs
        self.not_built |= other.not_built

    @property
    def undocumented(self) -> list[Diff]:
        return [d for d in self.diffs if d.doc is None and d.protocol not in self.not_built]

    @property
    def ok(self) -> bool:
        return not self.undocumented


def built_types() -> set[str]:
    """Event types wirebeat can emit: its available protocols (flows once protocols.flows exists)."""
    import importlib.util

    from protocols.registry import available

    out = set(available())
    if importlib.util.find_spec("protocols.flows") is not None:
        out.add("flow")
    return out


def compare(
    capture: str,
    pb_docs: Iterable[Mapping[str, Any]],
    wb_docs: Iterable[Mapping[str, Any]],
    entries: Sequence[Documented],
    built: set[str],
    capture_path: Path | None = None,
) -> Result:
    pb = [Event(capture, dict(d)) for d in pb_docs]
    wb = [Event(capture, dict(d)) for d in wb_docs]
    built = built | {e.type for e in wb}
    res = Result()
    for e in pb:
        res.counts(e.type).packetbeat += 1
    for e in wb:
        res.counts(e.type).wirebeat += 1
    for proto, c in res.protocols.items():
        if proto not in built:
            c.not_built = True
            res.not_built.add(proto)
    pairs, missing, extra = pair(pb, wb)
    per_pair = [(a, b, field_diffs(capture, a, b)) for a, b in pairs]
    unpaired = [Diff("missing-event", capture, e.type, pb=e) for e in missing]
    unpaired += [Diff("extra-event", capture, e.type, wb=e) for e in extra]
    diffs = [d for _, _, ds in per_pair for d in ds] + unpaired
    # Entries without ``after``/``with`` first; what they documented marks where a desync
    # began on its connection, and the ``after``/``with`` entries explain what follows.
    ctx = Context(pb, pairs, tcp_reuse_starts(capture_path) if capture_path is not None else None)
    direct = [d for d in entries if not d.cause]
    cascade = [d for d in entries if d.cause]
    causes = {d.cause for d in cascade}
    for d in sorted(diffs, key=lambda d: _start(d.event)):
        d.doc = document(d, direct, ctx)
        if d.doc is not None and d.doc.slug in causes:
            ctx.note_cause(d.doc.slug, d.event)
    if cascade:
        for d in diffs:
            if d.doc is None:
                d.doc = document(d, cascade, ctx)
    res.diffs = diffs
    for a, _b, ds in per_pair:
        c = res.counts(a.type)
        c.paired += 1
        if not ds:
            c.identical += 1
        elif all(d.doc is not None for d in ds):
            c.documented += 1
        else:
            c.undocumented += 1
    for d in unpaired:
        c = res.counts(d.protocol)
        if d.kind == "missing-event":
            c.missing += 1
            c.missing_documented += d.doc is not None
        else:
            c.extra += 1
            c.extra_documented += d.doc is not None
    return res


def crashed(capture: str, crash: PacketbeatCrashed, entries: Sequence[Documented]) -> Result:
    """A capture Packetbeat died on: one difference, documented or not, and nothing compared."""
    d = Diff(CRASH, capture, crash.protocol, field=crash.where, hint=crash.panic)
    d.doc = document(d, entries)
    res = Result(diffs=[d])
    c = res.counts(crash.protocol)
    c.crashes = 1
    c.crashes_documented = int(d.doc is not None)
    return res


@dataclass
class Job:
    """One capture and the config both tools run it with."""

    capture: Path
    config: dict[str, Any]
    label: str = ""

    def __post_init__(self) -> None:
        self.label = self.label or self.capture.name


def run_jobs(
    jobs: Sequence[Job],
    *,
    binary: Path | None = None,
    entries: Sequence[Documented] | None = None,
    workdir: Path | None = None,
    parallel: int = 8,
    cache: bool = True,
    wirebeat_root: Path = ROOT,
) -> tuple[Result, dict[str, Result]]:
    """Run both tools on every job; the total and the result per job label."""
    binary = binary or find_packetbeat()
    entries = load_differences() if entries is None else entries
    built = built_types()
    tmp = None
    if workdir is None:
        tmp = tempfile.mkdtemp(prefix="pbcompare-")
        workdir = Path(tmp)
    try:
        specs = [(j.capture, j.config) for j in jobs]
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            wb_future = pool.submit(wirebeat_all, specs, workdir, wirebeat_root)
            pb_all = packetbeat_all(binary, specs, workdir, parallel, cache)
            wb_all = wb_future.result()
        total = Result()
        per: dict[str, Result] = {}
        for job, pb_events, wb_events in zip(jobs, pb_all, wb_all, strict=True):
            if isinstance(pb_events, PacketbeatCrashed):
                r = crashed(job.label, pb_events, entries)
            else:
                r = compare(job.label, pb_events, wb_events, entries, built, job.capture)
            per[job.label] = r
            total.add(r)
        return total, per
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


# -- reports ------------------------------------------------------------------------------

ORDER = (
    "http",
    "mysql",
    "pgsql",
    "redis",
    "thrift",
    "mongodb",
    "dns",
    "memcache",
    "icmp",
    "amqp",
    "cassandra",
    "nfs",
    "tls",
    "sip",
    "dhcpv4",
    "flow",
)
NAMES = {
    "http": "HTTP",
    "mysql": "MySQL",
    "pgsql": "PostgreSQL",
    "redis": "Redis",
    "thrift": "Thrift",
    "mongodb": "MongoDB",
    "dns": "DNS",
    "memcache": "memcache",
    "icmp": "ICMP",
    "amqp": "AMQP",
    "cassandra": "Cassandra",
    "nfs": "NFS",
    "tls": "TLS",
    "sip": "SIP",
    "dhcpv4": "DHCPv4",
    "flow": "Flows",
}


def _sorted_protocols(res: Result) -> list[str]:
    return sorted(res.protocols, key=lambda p: (ORDER.index(p) if p in ORDER else len(ORDER), p))


def table(res: Result, markdown: bool = False) -> str:
    head = [
        "protocol",
        f"Packetbeat {PACKETBEAT_VERSION} events",
        "paired",
        "identical",
        "documented differences",
        "missing",
        "wirebeat extra (documented)",
        "undocumented",
    ]
    rows = []
    for p in _sorted_protocols(res):
        c = res.protocols[p]
        if c.not_built:
            rows.append([NAMES.get(p, p), str(c.packetbeat), "not built", "", "", "", "", ""])
            continue
        rows.append(
            [
                NAMES.get(p, p),
                str(c.packetbeat),
                str(c.paired),
                str(c.identical),
                str(c.documented),
                f"{c.missing} ({c.missing_documented})" if c.missing else "0",
                f"{c.extra} ({c.extra_documented})" if c.extra else "0",
                str(c.failures),
            ]
        )
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    fmt = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
    return "\n".join(fmt.format(*r) for r in [head, *rows])


def details(res: Result, verbose: bool = False) -> Iterator[str]:
    for d in res.diffs:
        if d.protocol in res.not_built:
            continue
        if d.doc is None or verbose:
            yield d.line()


def field_summary(res: Result) -> list[str]:
    """Per protocol: each differing field (or missing/extra event) with its count and entry."""
    counts: dict[str, dict[tuple[str, str], int]] = defaultdict(lambda: defaultdict(int))
    for d in res.diffs:
        if d.protocol in res.not_built:
            continue
        what = d.field if d.kind in FIELD_KINDS else d.kind
        counts[d.protocol][(what, d.doc.slug if d.doc is not None else "UNDOCUMENTED")] += 1
    out = []
    for proto in sorted(counts, key=lambda p: (ORDER.index(p) if p in ORDER else len(ORDER), p)):
        items = sorted(counts[proto].items(), key=lambda kv: (-kv[1], kv[0]))
        out.append(
            f"  {NAMES.get(proto, proto)}: " + ", ".join(f"{w} {n} [{slug}]" for (w, slug), n in items)
        )
    return out


def report(res: Result, verbose: bool = False, markdown: bool = False) -> str:
    lines = list(details(res, verbose))
    out = []
    if lines:
        out += [
            "Differences" + ("" if verbose else " not documented") + ":",
            *lines,
            "",
        ]
    out.append(table(res, markdown))
    summary = field_summary(res)
    if summary:
        out += ["", "What differs (count, and the entry that explains it):", *summary]
    if res.not_built:
        names = ", ".join(NAMES.get(p, p) for p in _sorted_protocols(res) if p in res.not_built)
        out.append(f"\nnot built in wirebeat yet (no failure until they land): {names}")
    n = len(res.undocumented)
    out.append(
        f"\n{n} undocumented difference{'s' if n != 1 else ''}" if n else "\nevery difference is documented"
    )
    return "\n".join(out)


# -- command line -------------------------------------------------------------------------


def _parse_ports(specs: Sequence[str]) -> list[dict[str, Any]]:
    out = []
    for spec in specs:
        name, _, ports = spec.partition("=")
        if not name or not ports:
            raise CompareError(f"--ports {spec!r}: expected PROTOCOL=PORT[,PORT...]")
        try:
            out.append({"type": name, "ports": [int(p) for p in ports.split(",")]})
        except ValueError:
            raise CompareError(f"--ports {spec!r}: ports must be numbers") from None
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="compare-packetbeat",
        description="Run Packetbeat 9.3.0 and wirebeat on captures and compare their events.",
    )
    p.add_argument("captures", nargs="*", help="pcap/pcapng files or directories of them")
    p.add_argument(
        "-c", "--config", help="packetbeat.yml for both tools (default: every protocol on default ports)"
    )
    p.add_argument(
        "--detailed",
        action="store_true",
        help="send_request/send_response everywhere, HTTP send_all_headers, Thrift framed",
    )
    p.add_argument(
        "--ports",
        action="append",
        default=[],
        metavar="PROTO=PORTS",
        help="add ports to a protocol, e.g. --ports http=8888 (repeatable)",
    )
    p.add_argument(
        "--differences", default=str(DIFFERENCES), help="the documented differences (docs/differences.md)"
    )
    p.add_argument("--packetbeat", help="Packetbeat binary (default: scripts/build-packetbeat)")
    p.add_argument("-j", "--jobs", type=int, default=8, help="Packetbeat runs at once (default 8)")
    p.add_argument("--no-cache", action="store_true", help="run Packetbeat even when its events are cached")
    p.add_argument("--per-capture", action="store_true", help="a table for every capture")
    p.add_argument("-v", "--verbose", action="store_true", help="list documented differences too")
    p.add_argument("--markdown", action="store_true", help="the table as Markdown")
    p.add_argument("--unused", action="store_true", help="list documented entries nothing matched")
    p.add_argument("--wirebeat-root", default=str(ROOT), help="the wirebeat checkout to run (default: here)")
    p.add_argument("--wirebeat-worker", help=argparse.SUPPRESS)
    return p


def expand(paths: Sequence[str]) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            out += sorted(x for x in p.iterdir() if x.suffix in (".pcap", ".pcapng", ".cap"))
        elif p.exists():
            out.append(p)
        else:
            raise CompareError(f"{p}: no such file")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.wirebeat_worker:
        return wirebeat_worker(args.wirebeat_worker)
    try:
        captures = expand(args.captures)
        if not captures:
            raise CompareError("no captures given")
        cfg = load_config(args.config) if args.config else default_config()
        cfg = with_protocols(cfg, _parse_ports(args.ports))
        if args.detailed:
            cfg = detailed(cfg)
        entries = parse_differences(Path(args.differences).read_text(encoding="utf-8"), args.differences)
        binary = Path(args.packetbeat) if args.packetbeat else find_packetbeat()
        jobs = [Job(c.resolve(), cfg, c.name) for c in captures]
        total, per = run_jobs(
            jobs,
            binary=binary,
            entries=entries,
            parallel=args.jobs,
            cache=not args.no_cache,
            wirebeat_root=Path(args.wirebeat_root).resolve(),
        )
    except CompareError as exc:
        print(f"compare-packetbeat: {exc}", file=sys.stderr)
        return 2
    if args.per_capture:
        for label, r in per.items():
            print(f"== {label}")
            print(table(r, args.markdown))
            print()
    print(report(total, args.verbose, args.markdown))
    if args.unused:
        unused = [d.slug for d in entries if not d.used]
        print("\ndocumented entries nothing matched: " + (", ".join(unused) if unused else "none"))
    return 0 if total.ok else 1


if __name__ == "__main__":
    sys.exit(main())
