"""``packetbeat.procs``: which local process owns each end of a transaction.

Like Packetbeat's ``procs.ProcessesWatcher``: for an endpoint on this host (a loopback or
local address), the owner of its (address, port) is looked up in the kernel's socket tables
(``/proc/net/{tcp,udp}{,6}``) joined with every process's ``/proc/<pid>/fd``; a socket
bound to the wildcard address matches any local address. Mappings are trusted for
``refresh_pids_freq`` and process details for ``refresh_process_info_every``; a miss
rescans ``/proc`` at most every ``max_proc_read_freq``. A process whose command line
contains a ``monitored`` entry's ``cmdline_grep`` gets that entry's ``process`` as name.

The event gets ``source.process`` / ``destination.process`` (which the envelope mirrors to
``client.process`` / ``server.process``) and ``process`` (the destination's, else the
source's), with ``name``, ``pid``, ``parent.pid``, ``args``, ``executable``,
``working_directory`` and ``start``. Live capture only: a capture file's sockets are gone.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from shipper.agent.settings import ProcsSettings
from shipper.pipeline.processors.procinfo import ProcessInfo, local_port_owners, read_process

log = logging.getLogger("procs")

_ANY = {4: "0.0.0.0", 6: "::"}
#: Bound of each cache (ports, processes): a busy host never grows them without limit.
MAX_ENTRIES = 65536


class ProcessWatcher:
    def __init__(
        self,
        cfg: ProcsSettings,
        local_ips: list[str],
        *,
        clock: Callable[[], float] = time.monotonic,
        owners: Callable[[str], dict[tuple[str, int], int]] = local_port_owners,
        reader: Callable[[int], ProcessInfo | None] = read_process,
    ) -> None:
        self.cfg = cfg
        self.local = {str(ipaddress.ip_address(i)) for i in local_ips}
        self.clock = clock
        self.owners = owners
        self.reader = reader
        self.lock = threading.Lock()
        #: transport → (address, port) → (pid, expires)
        self.ports: dict[str, dict[tuple[str, int], tuple[int, float]]] = {"tcp": {}, "udp": {}}
        self.last_scan: dict[str, float] = {"tcp": -1e18, "udp": -1e18}
        #: pid → (fields, expires)
        self.procs: dict[int, tuple[dict[str, Any] | None, float]] = {}
        self.lookups = 0
        self.scans = 0

    # -- the event side ------------------------------------------------------------------

    def enrich(self, evt: dict[str, Any]) -> None:
        network = evt.get("network")
        transport = network.get("transport") if isinstance(network, dict) else None
        if transport not in ("tcp", "udp"):
            return
        found = {}
        for side in ("source", "destination"):
            ep = evt.get(side)
            if not isinstance(ep, dict) or "process" in ep:
                continue
            ip, port = ep.get("ip"), ep.get("port")
            if not isinstance(ip, str) or type(port) is not int or not self.is_local(ip):
                continue
            proc = self.find(transport, ip, port)
            if proc is not None:
                ep["process"] = dict(proc, parent=dict(proc["parent"]), args=list(proc["args"]))
                found[side] = ep["process"]
        main = found.get("destination") or found.get("source")
        if main is not None and "process" not in evt:
            evt["process"] = dict(main, parent=dict(main["parent"]), args=list(main["args"]))

    def is_local(self, ip: str) -> bool:
        if ip in self.local:
            return True
        try:
            return ipaddress.ip_address(ip).is_loopback
        except ValueError:
            return False

    # -- lookups ---------------------------------------------------------------------------

    def find(self, transport: str, ip: str, port: int) -> dict[str, Any] | None:
        with self.lock:
            self.lookups += 1
            pid = self._pid(transport, ip, port)
            if pid is None:
                now = self.clock()
                if now - self.last_scan[transport] >= self.cfg.max_proc_read_freq:
                    self._scan(transport, now)
                    pid = self._pid(transport, ip, port)
            return None if pid is None else self._process(pid)

    def _pid(self, transport: str, ip: str, port: int) -> int | None:
        table = self.ports[transport]
        now = self.clock()
        key = (ip, port)
        hit = table.get(key)
        if hit is None:
            key = (_ANY[6 if ":" in ip else 4], port)
            hit = table.get(key)
            if hit is None and ":" not in ip:
                key = ("::", port)  # an IPv6 wildcard socket accepts IPv4 too
                hit = table.get(key)
        if hit is None:
            return None
        if now > hit[1]:
            del table[key]
            return None
        return hit[0]

    def _scan(self, transport: str, now: float) -> None:
        self.scans += 1
        self.last_scan[transport] = now
        table = self.ports[transport]
        if len(table) > MAX_ENTRIES:
            table.clear()
        expires = now + self.cfg.refresh_pids_freq
        for ep, pid in self.owners(transport).items():
            table[ep] = (pid, expires)
        for pid in [p for p, (_f, exp) in self.procs.items() if now > exp]:
            del self.procs[pid]

    def _process(self, pid: int) -> dict[str, Any] | None:
        now = self.clock()
        hit = self.procs.get(pid)
        if hit is not None and now <= hit[1]:
            return hit[0]
        info = self.reader(pid)
        fields = None if info is None else self._fields(info)
        if len(self.procs) > MAX_ENTRIES:
            self.procs.clear()
        self.procs[pid] = (fields, now + self.cfg.refresh_process_info_every)
        return fields

    def _fields(self, p: ProcessInfo) -> dict[str, Any]:
        name = p.name
        cmdline = " ".join(p.args)
        for m in self.cfg.monitored:
            if m.cmdline_grep in cmdline:
                name = m.process
                break
        out: dict[str, Any] = {
            "name": name,
            "pid": p.pid,
            "parent": {"pid": p.ppid},
            "args": list(p.args),
            "executable": p.exe,
        }
        if p.cwd:
            out["working_directory"] = p.cwd
        if p.start_text:
            out["start"] = p.start_text
        return out
