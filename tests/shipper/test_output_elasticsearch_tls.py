"""``ssl.*`` of output.elasticsearch against a local https bulk server (throw-away CA)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shipper.agent.settings import SslSettings
from shipper.outputs.base import OutputError
from tests.shipper.test_output_elasticsearch import bulk_server, event, output


def _cert(tmp: Path, san: x509.GeneralName) -> tuple[Path, ssl.SSLContext]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wirebeat test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "es")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = tmp / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (tmp / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp / "cert.pem", tmp / "key.pem")
    return ca_pem, ctx


def test_tls_with_ca_and_verification_modes(tmp_path: Path) -> None:
    ca, ctx = _cert(tmp_path, x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    with bulk_server(lambda n, d: 201, tls=ctx) as srv:
        url = f"https://{srv.host}"
        out, _ = output(url, ssl=SslSettings(certificate_authorities=[str(ca)]))
        assert asyncio.run(out.publish([event(1)])) == 1
        out, _ = output(url)
        with pytest.raises(OutputError, match="CERTIFICATE_VERIFY_FAILED") as ei:
            asyncio.run(out.publish([event(2)]))
        assert ei.value.retriable
        out, _ = output(url, ssl=SslSettings(verification_mode="none"))
        assert asyncio.run(out.publish([event(3)])) == 1


def test_tls_certificate_mode_skips_the_host_name(tmp_path: Path) -> None:
    ca, ctx = _cert(tmp_path, x509.DNSName("elasticsearch.invalid"))
    with bulk_server(lambda n, d: 201, tls=ctx) as srv:
        url = f"https://{srv.host}"
        out, _ = output(url, ssl=SslSettings(certificate_authorities=[str(ca)]))
        with pytest.raises(OutputError, match=r"CERTIFICATE_VERIFY_FAILED|match"):
            asyncio.run(out.publish([event(1)]))
        out, _ = output(
            url, ssl=SslSettings(certificate_authorities=[str(ca)], verification_mode="certificate")
        )
        assert asyncio.run(out.publish([event(2)])) == 1
