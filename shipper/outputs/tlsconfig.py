"""libbeat's ``ssl.*`` client settings (tlscommon) → :class:`ssl.SSLContext`.

The settings class itself, :class:`shipper.agent.settings.SslSettings`, belongs to the
config schema (``setup.kibana.ssl`` uses it too, and settings never import outputs); this
module only turns it into a client context for the outputs and the setup client.
"""

from __future__ import annotations

import ssl

from shipper.agent.settings import TLS_VERSIONS, SslSettings


class TLSConfigError(Exception):
    pass


def client_context(cfg: SslSettings | None, force: bool = False) -> ssl.SSLContext | None:
    """The client context, or None when TLS is off (``force``: the URL scheme asks for TLS).

    Raises TLSConfigError with a clear reason.
    """
    if cfg is None:
        if not force:
            return None
        cfg = SslSettings()
    if not force and not cfg.active:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    versions = sorted(TLS_VERSIONS[v] for v in cfg.supported_protocols)
    try:
        ctx.minimum_version = versions[0]
        ctx.maximum_version = versions[-1]
    except ValueError as exc:
        raise TLSConfigError(f"ssl.supported_protocols: {exc}") from None
    if cfg.verification_mode == "none":
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx.check_hostname = cfg.verification_mode in ("full", "strict")
        ctx.verify_mode = ssl.CERT_REQUIRED
        if cfg.certificate_authorities:
            for ca in cfg.certificate_authorities:
                try:
                    if ca.lstrip().startswith("-----BEGIN"):
                        ctx.load_verify_locations(cadata=ca)
                    else:
                        ctx.load_verify_locations(cafile=ca)
                except (OSError, ssl.SSLError) as exc:
                    raise TLSConfigError(f"ssl.certificate_authorities: cannot load {ca!r}: {exc}") from None
        else:
            ctx.load_default_certs()
    if cfg.cipher_suites:
        try:
            ctx.set_ciphers(":".join(cfg.cipher_suites))
        except ssl.SSLError as exc:
            raise TLSConfigError(f"ssl.cipher_suites: {exc}") from None
    if cfg.certificate or cfg.key:
        if not (cfg.certificate and cfg.key):
            raise TLSConfigError("ssl.certificate and ssl.key must be given together")
        try:
            ctx.load_cert_chain(cfg.certificate, cfg.key, password=cfg.key_passphrase or None)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"ssl.certificate/ssl.key: cannot load {cfg.certificate!r}: {exc}") from None
    return ctx
