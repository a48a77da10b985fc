"""TLS options and defaults (Packetbeat ``packetbeat.protocols: - type: tls``)."""

from __future__ import annotations

from typing import Any

import attrs

from protocols.common.config import ProtocolConfig

DEFAULT_PORTS = (443, 993, 995, 5223, 8443, 8883, 9243)

#: Fingerprint names Packetbeat accepts (case-insensitive) → hashlib name.
FINGERPRINTS = {"md5": "md5", "sha1": "sha1", "sha-1": "sha1", "sha256": "sha256", "sha-256": "sha256"}


def _check_fingerprints(_inst: Any, attribute: attrs.Attribute[Any], value: list[str]) -> None:
    for name in value:
        if not isinstance(name, str) or name.lower() not in FINGERPRINTS:
            raise ValueError(f"fingerprint algorithm {name!r} not found; use one of md5, sha1, sha256")


@attrs.frozen
class TlsConfig(ProtocolConfig):
    #: Certificates (and chains) as ECS x509 maps.
    send_certificates: bool = True
    #: The raw certificate chains, PEM-encoded, in ``tls.{client,server}.certificate_chain``.
    include_raw_certificates: bool = False
    #: ``tls.detailed.*`` (hellos, extensions, alerts, chains) and ``tls.*.x509``.
    include_detailed_fields: bool = True
    #: Hashes of the leaf certificates: ``md5``, ``sha1``, ``sha256``.
    fingerprints: list[str] = attrs.field(factory=lambda: ["sha1"], validator=_check_fingerprints)

    def hash_names(self) -> tuple[str, ...]:
        out: list[str] = []
        for name in self.fingerprints:
            algo = FINGERPRINTS[name.lower()]
            if algo not in out:
                out.append(algo)
        return tuple(out)
