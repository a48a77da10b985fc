"""NFS-Ganesha (Debian's nfs-ganesha, in-memory FSAL) serving NFSv4.0 and NFSv3 in network and
mount namespaces of its own.

Ganesha registers its programs with rpcbind and will not start without it, and rpcbind
listens on the fixed port 111 and a fixed socket under /run. So the test makes a private
network namespace (its own loopback: nothing it does is visible on the machine's, no port
can clash) and a private mount namespace with a tmpfs on /run, starts rpcbind and Ganesha
there, and runs the clients and tcpdump inside with ``nsenter``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import need, need_tool

CONFIG = """\
NFS_CORE_PARAM {{
    Protocols = 3, 4;
    Enable_NLM = false;
    Enable_RQUOTA = false;
    Enable_UDP = false;
}}
NFSV4 {{
    Graceless = true;
    RecoveryRoot = {tmp}/recovery;
    Only_Numeric_Owners = true;
}}
EXPORT {{
    Export_Id = 1;
    Path = /mem;
    Pseudo = /mem;
    Access_Type = RW;
    Squash = No_Root_Squash;
    Protocols = 3, 4;
    Transports = TCP;
    SecType = sys;
    FSAL {{ Name = MEM; }}
}}
"""

SCRIPT = """\
set -e
mount -t tmpfs tmpfs /run
mkdir -p /run/rpcbind
ip link set lo up
{rpcbind} -f &
for i in $(seq 50); do [ -S /run/rpcbind.sock ] && break; sleep 0.1; done
exec {ganesha} -F -f {tmp}/ganesha.conf -L {tmp}/ganesha.log -N NIV_EVENT -p /run/ganesha.pid
"""


class Namespace:
    def __init__(self, pid: int, tmp: Path) -> None:
        self.pid = pid
        self.tmp = tmp

    def cmd(self, *args: str) -> list[str]:
        """``args`` run inside the namespaces."""
        return ["nsenter", "-t", str(self.pid), "-n", "-m", *args]

    def log(self) -> str:
        path = self.tmp / "ganesha.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _child(pid: int) -> int | None:
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            kids = (task / "children").read_text().split()
            if kids:
                return int(kids[0])
    return None


def _listening(ns: Namespace) -> bool:
    p = subprocess.run(ns.cmd("ss", "-ltnH", "sport = :2049"), capture_output=True, text=True, timeout=10)
    return "2049" in p.stdout


@contextlib.contextmanager
def ganesha() -> Iterator[Namespace]:
    exe = shutil.which("ganesha.nfsd") or "/usr/bin/ganesha.nfsd"
    if not os.path.exists(exe) or not os.path.exists("/usr/lib/x86_64-linux-gnu/ganesha/libfsalmem.so"):
        need("nfs-ganesha with its MEM FSAL (scripts/setup.d/60-nfs.sh installs nfs-ganesha-mem)")
    rpcbind = need_tool("rpcbind")
    for tool in ("unshare", "nsenter", "ip", "ss"):
        need_tool(tool)
    if os.geteuid() != 0:
        need("root (network and mount namespaces for Ganesha)")
    with tempfile.TemporaryDirectory(prefix="wirebeat-ganesha-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "recovery").mkdir()
        (tmp / "ganesha.conf").write_text(CONFIG.format(tmp=tmp))
        (tmp / "run.sh").write_text(SCRIPT.format(tmp=tmp, rpcbind=rpcbind, ganesha=exe))
        proc = subprocess.Popen(
            ["unshare", "--net", "--mount", "--fork", "sh", str(tmp / "run.sh")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            ns: Namespace | None = None
            while True:
                if proc.poll() is not None:
                    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                    raise RuntimeError(
                        f"ganesha exited: {err[-2000:]}\n{(tmp / 'ganesha.log').read_text()[-3000:]}"
                    )
                if ns is None:
                    child = _child(proc.pid)
                    if child is not None:
                        ns = Namespace(child, tmp)
                if ns is not None and _listening(ns):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError("ganesha did not start:\n" + (ns.log()[-3000:] if ns else ""))
                time.sleep(0.2)
            yield ns
        finally:
            # Our own session: unshare, the shell it runs, rpcbind and Ganesha.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@contextlib.contextmanager
def capture_in(ns: Namespace, path: Path, bpf: str = "tcp port 2049") -> Iterator[Path]:
    """tcpdump on the namespace's loopback while the block runs."""
    exe = need_tool("tcpdump")
    proc = subprocess.Popen(
        ns.cmd(exe, "-i", "lo", "-s", "0", "-B", "32768", "-U", "-n", "-w", str(path), bpf),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if b"listening on" in line or not line:
            break
    if proc.poll() is not None:
        raise RuntimeError("tcpdump failed in the namespace")
    try:
        # Probe with bare connections until the capture shows them (see capture.py).
        deadline = time.monotonic() + 15
        while not (path.exists() and path.stat().st_size > 24):
            subprocess.run(
                ns.cmd("bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/2049"), capture_output=True, timeout=10
            )
            time.sleep(0.2)
            if time.monotonic() > deadline:
                raise RuntimeError("tcpdump never captured the probe connections")
        yield path
    finally:
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
