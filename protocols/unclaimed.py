"""Traffic on ports no protocol claims: packets per server port, and the first bytes seen
each way, so the agent can say "12,340 packets to TCP 5433 — not configured; add it to
pgsql ports?". Only packets the decoders would otherwise skip reach it."""

from __future__ import annotations

TCP_SYN = 0x02
TCP_ACK = 0x10

#: Payload samples kept per port and direction (bytes), and ports with a sample.
SAMPLE_BYTES = 64
MAX_SAMPLED_PORTS = 256


class PortTally:
    """Counts per (transport, server port). The counters are bounded by the port space;
    samples by ``MAX_SAMPLED_PORTS``."""

    __slots__ = ("counts", "from_server", "to_server")

    def __init__(self) -> None:
        self.counts: dict[tuple[str, int], int] = {}
        #: (transport, port) -> first payload sent to / from that port.
        self.to_server: dict[tuple[str, int], bytes] = {}
        self.from_server: dict[tuple[str, int], bytes] = {}

    def note(self, transport: str, sport: int, dport: int, flags: int, payload: bytes) -> None:
        # Which side serves: a bare SYN goes to it, a SYN-ACK comes from it; otherwise the
        # lower port (ephemeral client ports are high).
        if flags & TCP_SYN:
            server = sport if flags & TCP_ACK else dport
        else:
            server = dport if dport <= sport else sport
        key = (transport, server)
        counts = self.counts
        counts[key] = counts.get(key, 0) + 1
        if payload:
            samples = self.to_server if server == dport else self.from_server
            if key not in samples and len(samples) < MAX_SAMPLED_PORTS:
                samples[key] = bytes(payload[:SAMPLE_BYTES])

    def merge(self, other: PortTally) -> None:
        for k, n in other.counts.items():
            self.counts[k] = self.counts.get(k, 0) + n
        for mine, theirs in ((self.to_server, other.to_server), (self.from_server, other.from_server)):
            for k, b in theirs.items():
                if k not in mine and len(mine) < MAX_SAMPLED_PORTS:
                    mine[k] = b
