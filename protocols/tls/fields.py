"""TLS session → event dict (Packetbeat ``protos/tls/tls.go`` ``createEvent``): ECS ``tls.*``,
``tls.detailed.*`` when ``include_detailed_fields``, certificates as ECS ``x509`` maps."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from protocols.common.event import ERROR, OK, transaction_event
from protocols.handler import FROM_CLIENT, FROM_SERVER
from protocols.tls.hello import EXT_PRE_SHARED_KEY, EXT_SESSION_TICKET, Hello
from protocols.tls.names import (
    alert_name,
    cipher_name,
    group_name,
    protocol_version,
    severity_name,
    version_name,
)
from protocols.tls.parser import DirectionParser, ocsp_name
from protocols.tls.transactions import TlsSession
from protocols.tls.x509 import Certificate

if TYPE_CHECKING:
    from protocols.tls import TlsPlugin

TLS13 = (3, 4)


def _cert_maps(certs: list[Certificate]) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    chain = [c.to_map() for c in certs[1:]] if len(certs) > 1 else None
    return certs[0].to_map(), chain


def _endpoint(
    tls: dict[str, Any], side: str, certs: list[Certificate], fingerprints: tuple[str, ...]
) -> None:
    leaf = certs[0]
    d = tls.setdefault(side, {})
    if fingerprints:
        d["hash"] = {algo: leaf.fingerprint(algo) for algo in fingerprints}
    if leaf.subject:
        d["subject"] = leaf.subject
    if leaf.issuer:
        d["issuer"] = leaf.issuer
    d["not_after"] = leaf.not_after
    d["not_before"] = leaf.not_before


def _resumption(
    ch: Hello | None,
    sh: Hello | None,
    client: DirectionParser | None,
    server: DirectionParser | None,
    version: tuple[int, int],
) -> str | None:
    """The resumption method, or None for a full handshake."""
    if sh is not None and version == TLS13:
        # TLS 1.3: the server accepted a pre-shared key (a ticket of an earlier session,
        # RFC 8446 §2.2); the legacy session id is echoed on every handshake.
        return "ticket" if sh.has_extension(EXT_PRE_SHARED_KEY) else None
    if (client is not None and client.key_exchanged) or (server is not None and server.key_exchanged):
        return None
    if ch is None or sh is None:
        return None
    echoed = bool(ch.session_id) and ch.session_id == sh.session_id
    # A client offering a ticket sends a fresh random session id, which a server that
    # accepts the ticket echoes (RFC 5077 §3.4); it need not send a new ticket.
    if ch.ticket() and (sh.has_extension(EXT_SESSION_TICKET) or echoed):
        return "ticket"
    if echoed:
        return "id"
    return None


def to_event(plugin: TlsPlugin, s: TlsSession) -> dict[str, Any]:
    cfg = plugin.config
    client, server = s.client, s.server
    ch = client.hello if client is not None else None
    sh = server.hello if server is not None else None
    src_ip, src_port, dst_ip, dst_port = s.conn.endpoints(FROM_SERVER if s.flipped else FROM_CLIENT)
    evt = transaction_event(
        "tls",
        "tcp",
        OK if s.established else ERROR,
        s.start,
        (src_ip, src_port),
        (dst_ip, dst_port),
        start=s.start,
        end=s.end,
    )
    tls: dict[str, Any] = {}
    detailed: dict[str, Any] = {}
    if ch is not None:
        detailed["client_hello"] = ch.to_map()
        tls["client"] = {"ja3": ch.ja3()}
        if ch.ciphers:
            tls["client"]["supported_ciphers"] = ch.supported_ciphers()
        names = ch.server_names()
        if names and names[0]:
            evt["destination"]["domain"] = names[0]
            tls["client"]["server_name"] = names[0]
    if sh is not None:
        detailed["server_hello"] = sh.to_map()
        tls["server"] = {"ja3s": sh.ja3s()}
        tls["cipher"] = cipher_name(sh.cipher)
        alpn = sh.alpn()
        if alpn and alpn[0]:
            tls["next_protocol"] = alpn[0]
    if server is not None and server.ocsp is not None:
        detailed["ocsp_response"] = ocsp_name(server.ocsp)

    client_certs = client.certificates if client is not None else []
    server_certs = server.certificates if server is not None else []
    fingerprints = plugin.fingerprints
    for side, certs in (("client", client_certs), ("server", server_certs)):
        if not certs:
            continue
        if cfg.send_certificates:
            leaf, chain = _cert_maps(certs)
            detailed[f"{side}_certificate"] = leaf
            if chain is not None:
                detailed[f"{side}_certificate_chain"] = chain
        _endpoint(tls, side, certs, fingerprints)
        if cfg.include_raw_certificates:
            tls[side]["certificate_chain"] = [c.pem() for c in certs]
    detailed["client_certificate_requested"] = server.cert_requested if server is not None else False

    # The version: the server's choice (supported_versions for TLS 1.3), else the client's.
    if sh is not None:
        version = sh.selected_version() or sh.version
    elif ch is not None:
        version = ch.version
    else:
        version = (0, 0)

    method = _resumption(ch, sh, client, server, version)
    tls["resumed"] = method is not None
    if method is not None:
        detailed["resumption_method"] = method
    tls["established"] = s.established

    alerts = []
    for source, parser in (("client", client), ("server", server)):
        if parser is not None:
            alerts += [
                {
                    "severity": severity_name(a.level),
                    "code": a.code,
                    "type": alert_name(a.code),
                    "source": source,
                }
                for a in parser.alerts
            ]
    if alerts:
        detailed["alerts"] = alerts
        detailed["alert_types"] = [a["type"] for a in alerts]

    detailed["version"] = version_name(*version)
    tls["version_protocol"], tls["version"] = protocol_version(*version)

    # The key-exchange group: TLS 1.3 key_share of the ServerHello, or the named curve of
    # an ECDHE ServerKeyExchange (RFC 8446 §4.2.8, RFC 8422 §5.4).
    group = sh.key_share_group() if sh is not None and version == TLS13 else None
    if (
        group is None
        and server is not None
        and server.curve is not None
        and sh is not None
        and "ECDH" in cipher_name(sh.cipher)
    ):
        group = server.curve
    if group is not None:
        tls["curve"] = group_name(group)

    if cfg.include_detailed_fields:
        for side in ("client", "server"):
            cert = detailed.pop(f"{side}_certificate", None)
            if cert is not None:
                tls.setdefault(side, {})["x509"] = cert
        tls["detailed"] = detailed
    evt["tls"] = tls
    return evt
