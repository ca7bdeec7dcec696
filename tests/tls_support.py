"""Certificates made in the test (with `cryptography`) and platforms in each `security.tls` mode,
for the gateway's TLS tests (test_gateway_tls.py, test_gateway_engine.py)."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from mindscape_ops.config.models import Platform
from mindscape_ops.render.artifacts import render_platform

from .render_support import deploy, full_data, platform_from


@dataclass(frozen=True)
class Issued:
    certificate: Path
    key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def issue(directory: Path, stem: str, names: list[str], ca: Issued | None = None) -> Issued:
    """A certificate for `names` (DNS names or IP addresses), signed by `ca` or self-signed (then
    it is a CA too), and its key: PEM files `<stem>.pem` and `<stem>.key` in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    if ca is None:
        issuer, signing_key = _name(names[0]), key
    else:
        issuer_cert = x509.load_pem_x509_certificate(ca.certificate.read_bytes())
        issuer = issuer_cert.subject
        signing_key = serialization.load_pem_private_key(ca.key.read_bytes(), password=None)
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(names[0]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=ca is None, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )
    issued = Issued(directory / f"{stem}.pem", directory / f"{stem}.key")
    issued.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    issued.key.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    issued.key.chmod(0o644)  # readable by a container whatever user it maps to: a test key
    return issued


def tls_platform(directory: Path, tls: dict, **security) -> Platform:
    """examples/full with `security.tls` set (and any other `security` sections replaced)."""
    data = full_data()
    data["security"]["tls"] = tls
    data["security"].update(security)
    return platform_from(directory, data)


def gateway_conf(platform: Platform) -> str:
    return render_platform(platform)[deploy(platform, "gateway/nginx.conf")]
