"""A signing identity per workspace: a local root CA and end-entity certificates naming the artist.

C2PA validators reject a self-signed signing certificate, so the workspace makes its own
small PKI on first use: a root (the trust anchor a client imports to see "Trusted") and
an end-entity certificate per artist name, with the profile c2pa-rs checks (X.509 v3,
ECDSA P-256 / ES256, key usage digitalSignature marked critical, an extended key usage
of id-kp-documentSigning and id-kp-emailProtection, CA:false, subject and authority key
identifiers). Rotation makes a new end-entity certificate and keeps the old ones, so
files signed before still show who signed them and still chain to the same root.

On disk (`folder`, e.g. `<workspace>/credentials/`, mode 0700)::

    root.pem  root.key                     the trust anchor (key 0600)
    signers/<utc time>-<name>/cert.pem     one end-entity certificate per rotation
    signers/<utc time>-<name>/key.pem      its private key (0600)
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from style_studio.base.errors import InvalidInput, NotFound
from style_studio.base.files import atomic_write_bytes, slug

ROOT_CERT, ROOT_KEY, SIGNERS = "root.pem", "root.key", "signers"
CERT_FILE, KEY_FILE = "cert.pem", "key.pem"
# Long lives on purpose: with no timestamp authority (offline), a validator checks the
# certificate against the time it verifies, so a short-lived one would "expire" old files.
ROOT_YEARS, SIGNER_YEARS = 30, 10
RENEW_BEFORE = timedelta(days=30)
BACKDATE = timedelta(minutes=5)  # a clock a little behind must not see "not yet valid"
# id-kp-documentSigning (RFC 9336): the EKU the C2PA trust model names for content signing.
DOCUMENT_SIGNING = ObjectIdentifier("1.3.6.1.5.5.7.3.36")
MAX_NAME_CHARS = 64  # X.520 ub-common-name / ub-organization-name


@dataclass(frozen=True)
class SignerCertificate:
    """One end-entity certificate of the workspace (current or retired) and where its key is."""

    folder: Path
    author: str
    serial: str
    fingerprint: str  # sha256 of the DER certificate, hex
    not_before: datetime
    not_after: datetime
    cert_pem: str

    @property
    def key_path(self) -> Path:
        return self.folder / KEY_FILE

    def valid_at(self, when: datetime, margin: timedelta = timedelta(0)) -> bool:
        return self.not_before <= when and when + margin < self.not_after


@dataclass(frozen=True)
class SigningIdentity:
    """The certificate that signs now, with the root it chains to."""

    folder: Path
    root_pem: str
    signer: SignerCertificate

    @property
    def author(self) -> str:
        return self.signer.author

    @property
    def chain_pem(self) -> str:
        """The x5chain a manifest carries: the end-entity certificate; the root is the anchor."""
        return self.signer.cert_pem

    @property
    def public_chain_pem(self) -> str:
        """What to hand a client: the signing certificate followed by the root to trust."""
        return self.signer.cert_pem + self.root_pem

    def sign(self, data: bytes) -> bytes:
        """ES256 over `data` as C2PA wants it: raw r||s (64 bytes), not DER."""
        key = _load_key(self.signer.key_path)
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def signing_identity(folder: Path, author: str, now: datetime | None = None) -> SigningIdentity:
    """The identity to sign with for `author`, made on first use.

    Takes the newest certificate naming this author that is valid for another month;
    when there is none (first use, a new name, or the old one about to expire) it issues
    one, keeping the others for the files they signed.
    """
    name = _author(author)
    now = now or datetime.now(UTC)
    root_cert, _ = _ensure_root(Path(folder), name, now)
    for signer in reversed(signers(folder)):
        if signer.author == name and signer.valid_at(now, RENEW_BEFORE):
            return SigningIdentity(Path(folder), _pem(root_cert), signer)
    return rotate(folder, name, now)


def rotate(folder: Path, author: str, now: datetime | None = None) -> SigningIdentity:
    """Issue a new end-entity certificate for `author`; earlier ones stay on disk."""
    name = _author(author)
    now = now or datetime.now(UTC)
    folder = Path(folder)
    root_cert, root_key = _ensure_root(folder, name, now)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = _name(name, name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(root_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=365 * SIGNER_YEARS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signing=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage(
            [DOCUMENT_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
            root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    target = folder / SIGNERS / f"{now.strftime('%Y%m%dT%H%M%S%fZ')}-{slug(name, 'artist')}"
    _write_key(target / KEY_FILE, key)
    atomic_write_bytes(target / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))
    return SigningIdentity(folder, _pem(root_cert), _signer(target))


def signers(folder: Path) -> list[SignerCertificate]:
    """Every end-entity certificate of the workspace, oldest first (retired ones included)."""
    base = Path(folder) / SIGNERS
    if not base.is_dir():
        return []
    return [_signer(d) for d in sorted(base.iterdir())
            if (d / CERT_FILE).is_file() and (d / KEY_FILE).is_file()]


def trust_anchor(folder: Path) -> str:
    """The root certificate (PEM) a verifier trusts to call this workspace's files Trusted."""
    path = Path(folder) / ROOT_CERT
    if not path.is_file():
        raise NotFound("This workspace has no signing identity yet: it is made the first "
                       "time an output or a LoRA is signed.")
    return path.read_text(encoding="ascii")


def export_public_chain(identity: SigningIdentity, dest: Path) -> Path:
    """Write the public certificate chain (no keys) for a client to inspect or trust."""
    atomic_write_bytes(Path(dest), identity.public_chain_pem.encode("ascii"))
    os.chmod(dest, 0o644)
    return Path(dest)


def certificate_fingerprint(cert_pem: str) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.encode("ascii"))
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


# -- internals ---------------------------------------------------------------------------
def _author(author: str) -> str:
    name = " ".join((author or "").split())
    if not name:
        raise InvalidInput("Write the artist's name first: the signing certificate names "
                           "who signs the files.")
    if len(name) > MAX_NAME_CHARS:
        raise InvalidInput(f"The artist's name is {len(name)} characters; a certificate "
                           f"holds at most {MAX_NAME_CHARS}. Use a shorter form of it.")
    return name


def _name(organisation: str, common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(signing: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signing, content_commitment=False, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=not signing,
        crl_sign=not signing, encipher_only=False, decipher_only=False)


def _ensure_root(folder: Path, author: str,
                 now: datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """Load the workspace root, or make it (named after the first artist who signs)."""
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    cert_path, key_path = folder / ROOT_CERT, folder / ROOT_KEY
    if cert_path.is_file() and key_path.is_file():
        key = _load_key(key_path)
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), key
    key = ec.generate_private_key(ec.SECP256R1())
    suffix = " - Style Studio local root"
    subject = _name(author, author[:MAX_NAME_CHARS - len(suffix)] + suffix)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + timedelta(days=365 * ROOT_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signing=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    atomic_write_bytes(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    """Private keys are readable by the owner only (the temp file is made 0600 already)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    atomic_write_bytes(path, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    os.chmod(path, 0o600)


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    if path.stat().st_mode & 0o077:
        os.chmod(path, 0o600)  # someone widened it: a signing key is the owner's alone
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise InvalidInput(f"{path} is not an ECDSA key; remove the credentials folder's "
                           "signers/ entry it belongs to and sign again to make a new one.")
    return key


def _signer(folder: Path) -> SignerCertificate:
    pem = (folder / CERT_FILE).read_text(encoding="ascii")
    cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return SignerCertificate(
        folder=folder, author=str(names[0].value) if names else "",
        serial=format(cert.serial_number, "x"), fingerprint=certificate_fingerprint(pem),
        not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, cert_pem=pem)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
