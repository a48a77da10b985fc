"""libbeat's ``ssl.*`` client settings (tlscommon) → :class:`ssl.SSLContext`."""

from __future__ import annotations

import ssl
from typing import Any

import attrs

from protocols.common.config import one_of

_VERSIONS = {
    "TLSv1.0": ssl.TLSVersion.TLSv1,
    "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2,
    "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}


def _protocols(_inst: Any, _attr: attrs.Attribute[Any], value: list[str]) -> None:
    for v in value:
        if v not in _VERSIONS:
            raise ValueError(f"unsupported TLS version {v!r} (use {', '.join(_VERSIONS)})")
    if not value:
        raise ValueError("supported_protocols must name at least one TLS version")


class TLSConfigError(Exception):
    pass


@attrs.frozen
class SSLConfig:
    #: None: on when any other ``ssl.*`` setting is given (libbeat enables TLS then too).
    enabled: bool | None = None
    #: Files or inline PEM text (checked when the config is loaded).
    certificate_authorities: list[str] = attrs.field(factory=list, metadata={"path_kind": "pem"})
    certificate: str = attrs.field(default="", metadata={"path_kind": "pem"})
    key: str = attrs.field(default="", metadata={"path_kind": "pem"})
    key_passphrase: str = ""
    #: full: chain and host name; strict: the same (Python never falls back to the CN);
    #: certificate: chain only; none: no verification (insecure).
    verification_mode: str = attrs.field(
        default="full", validator=one_of("full", "strict", "certificate", "none")
    )
    supported_protocols: list[str] = attrs.field(factory=lambda: ["TLSv1.2", "TLSv1.3"], validator=_protocols)
    cipher_suites: list[str] = attrs.field(factory=list)

    @property
    def active(self) -> bool:
        if self.enabled is not None:
            return self.enabled
        return bool(self.certificate_authorities or self.certificate or self.verification_mode != "full")


def client_context(cfg: SSLConfig | None, force: bool = False) -> ssl.SSLContext | None:
    """The client context, or None when TLS is off (``force``: the URL scheme asks for TLS).

    Raises TLSConfigError with a clear reason.
    """
    if cfg is None:
        if not force:
            return None
        cfg = SSLConfig()
    if not force and not cfg.active:
        return None
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    versions = sorted(_VERSIONS[v] for v in cfg.supported_protocols)
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
