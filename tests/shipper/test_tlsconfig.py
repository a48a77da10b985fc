"""ssl.* settings → SSLContext (libbeat tlscommon names and defaults)."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from shipper.agent.settings import SslSettings
from shipper.outputs.tlsconfig import TLSConfigError, client_context
from tests.interop.ljpeer import make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_off_unless_configured() -> None:
    assert client_context(None) is None
    assert client_context(SslSettings()) is None
    assert client_context(SslSettings(enabled=False, certificate_authorities=["x"])) is None


def test_full_verification_by_default(pki: dict[str, Path]) -> None:
    ctx = client_context(SslSettings(certificate_authorities=[str(pki["ca"])]))
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
    assert ctx.maximum_version == ssl.TLSVersion.TLSv1_3
    assert len(ctx.get_ca_certs()) == 1


def test_inline_pem_authority(pki: dict[str, Path]) -> None:
    ctx = client_context(SslSettings(certificate_authorities=[pki["ca"].read_text()]))
    assert ctx is not None and len(ctx.get_ca_certs()) == 1


@pytest.mark.parametrize(
    ("mode", "verify", "hostname"),
    [
        ("full", ssl.CERT_REQUIRED, True),
        ("strict", ssl.CERT_REQUIRED, True),
        ("certificate", ssl.CERT_REQUIRED, False),
        ("none", ssl.CERT_NONE, False),
    ],
)
def test_verification_modes(mode: str, verify: ssl.VerifyMode, hostname: bool) -> None:
    ctx = client_context(SslSettings(enabled=True, verification_mode=mode))
    assert ctx is not None
    assert (ctx.verify_mode, ctx.check_hostname) == (verify, hostname)


def test_supported_protocols() -> None:
    ctx = client_context(SslSettings(enabled=True, supported_protocols=["TLSv1.3"]))
    assert ctx is not None
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_3


def test_client_certificate_with_passphrase(pki: dict[str, Path], tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki["key"].read_bytes(), None)
    enc = tmp_path / "enc.key"
    enc.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pass phrase"),
        )
    )
    good = SslSettings(certificate=str(pki["cert"]), key=str(enc), key_passphrase="pass phrase")
    assert client_context(good) is not None
    with pytest.raises(TLSConfigError, match=r"ssl.certificate/ssl.key"):
        client_context(SslSettings(certificate=str(pki["cert"]), key=str(enc), key_passphrase="wrong"))
    with pytest.raises(TLSConfigError, match="together"):
        client_context(SslSettings(certificate=str(pki["cert"])))


def test_missing_authority_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TLSConfigError, match=r"ssl\.certificate_authorities: cannot load"):
        client_context(SslSettings(certificate_authorities=[str(tmp_path / "nope.crt")]))
