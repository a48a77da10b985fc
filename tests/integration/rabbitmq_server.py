"""A throw-away RabbitMQ broker (Debian's ``rabbitmq-server``, installed by
scripts/setup.d/50-amqp.sh) on 127.0.0.1: free AMQP, distribution and epmd ports, its own
node name, Mnesia and log directories, config and Erlang cookie in a temporary directory.
Nothing of the package's own service is used; its epmd is stopped with it.

Booting takes 5-20 seconds on this machine (Erlang, Mnesia, feature flags), so tests start
it once per session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.helpers import free_port, need

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def _answers(port: int) -> bool:
    """True once the broker answers a protocol header with connection.start."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(b"AMQP\x00\x00\x09\x01")
        s.settimeout(2)
        data = s.recv(16)
        return len(data) >= 11 and data[0] == 1 and data[7:11] == b"\x00\x0a\x00\x0a"
    return False


@contextlib.contextmanager
def rabbitmq_server() -> Iterator[int]:
    exe = SERVER if os.path.exists(SERVER) else shutil.which("rabbitmq-server")
    if exe is None:
        need("rabbitmq-server (scripts/setup.d/50-amqp.sh installs it)")
    assert exe is not None
    epmd = shutil.which("epmd") or "/usr/bin/epmd"
    port, dist, epmd_port = free_port(), free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="wirebeat-rabbitmq-") as tmp:
        base = Path(tmp)
        (base / "rabbitmq.conf").write_text(
            f"listeners.tcp.1 = 127.0.0.1:{port}\nloopback_users = none\nlog.console = false\n"
        )
        (base / "enabled_plugins").write_text("[].\n")
        env = {
            **os.environ,
            "HOME": tmp,  # the Erlang cookie goes here
            "RABBITMQ_NODENAME": f"wirebeat{os.getpid()}x{port}@localhost",
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(port),
            "RABBITMQ_DIST_PORT": str(dist),
            "ERL_EPMD_PORT": str(epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(base / "log"),
            "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        log = (base / "server.out").open("wb")
        proc = subprocess.Popen(
            [exe], cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 90
            while not _answers(port):
                if proc.poll() is not None:
                    raise RuntimeError(f"rabbitmq-server exited: {(base / 'server.out').read_text()[-3000:]}")
                if time.monotonic() > deadline:
                    raise RuntimeError("rabbitmq-server did not start in 90 s")
                time.sleep(0.25)
            yield port
        finally:
            # The process group is the server script and the Erlang VM it started.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                proc.wait()
            # epmd daemonized itself out of the group: stop the one on our port.
            subprocess.run(
                [epmd, "-kill"],
                env={**os.environ, "ERL_EPMD_PORT": str(epmd_port)},
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                timeout=10,
            )
            log.close()
