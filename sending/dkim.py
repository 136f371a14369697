"""DKIM signing: dkimpy canonicalises and builds the header, OpenSSL signs.

dkimpy's own RSA is pure Python (about 5 ms a signature); here the one
private-key operation goes through ``cryptography`` (OpenSSL), everything else
(body and header canonicalisation, tag list, folding) stays dkimpy's, so the
result verifies with ``dkim.verify``.

Keys live in a directory, one folder per signing domain, one PEM file per
selector: ``<DKIM_KEY_DIR>/<domain>/<selector>.pem`` (RSA, 2048 bits by
default; an Ed25519 PEM under ``DKIM_ED25519_SELECTOR`` adds a second
signature). Key files are read once per process.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

logger = logging.getLogger(__name__)

SIGNED_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"feedback-id", b"mime-version",
    b"content-type",
)
# relaxed headers (relays refold them), simple body: our bodies are 7bit or quoted-printable
# whose lines nothing rewrites (none over 998 octets, no trailing blanks), and simple
# costs no regex over the body.
_CANON = (b"relaxed", b"simple")


@dataclass(frozen=True)
class SigningKey:
    domain: bytes
    selector: bytes
    key: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey

    @property
    def algorithm(self) -> bytes:
        return b"ed25519-sha256" if isinstance(self.key, ed25519.Ed25519PrivateKey) \
            else b"rsa-sha256"


class _OpenSSLDKIM(dkim.DKIM):
    """dkimpy's signer with the private-key step done by OpenSSL."""

    def sign_with(self, key: SigningKey, include_headers: tuple[bytes, ...]) -> bytes:
        self.signature_algorithm = key.algorithm
        canon_policy = dkim.CanonicalizationPolicy.from_c_value(b"/".join(_CANON))
        present = {name.lower() for name, _ in self.headers}
        include = tuple(h for h in include_headers if h in present)
        if b"from" not in include:
            raise dkim.ParameterError("The From header field MUST be signed")
        self.include_headers = include
        self.hasher = dkim.HASH_ALGORITHMS[self.signature_algorithm]
        body = canon_policy.canonicalize_body(self.body)
        bodyhash = base64.b64encode(self.hasher(body).digest())
        fields = [
            (b"v", b"1"), (b"a", self.signature_algorithm), (b"c", canon_policy.to_c_value()),
            (b"d", key.domain), (b"i", b"@" + key.domain), (b"q", b"dns/txt"),
            (b"s", key.selector), (b"t", str(int(time.time())).encode("ascii")),
            (b"h", b" : ".join(include)), (b"bh", bodyhash), (b"b", b"0" * 60),
        ]
        value = self.gen_header(fields, include, canon_policy, b"DKIM-Signature", key.key)
        return b"DKIM-Signature: " + value

    def gen_header(self, fields, include_headers, canon_policy, header_name, pk,
                   standardize=False):
        header_value = b"; ".join(b"=".join(x) for x in fields)
        header_value = dkim.fold(header_value, namelen=len(header_name), linesep=b"\r\n")
        header_value = dkim.RE_BTAG.sub(b"\\1", header_value)
        header = (header_name, b" " + header_value)
        hasher = self.hasher()
        headers = _canonical_headers(canon_policy, self.headers)
        self.signed_headers = dkim.hash_headers(
            hasher, canon_policy, headers, include_headers, header, dict(fields))
        if isinstance(pk, ed25519.Ed25519PrivateKey):
            signature = pk.sign(hasher.digest())
        else:
            signature = pk.sign(hasher.digest(), padding.PKCS1v15(), Prehashed(hashes.SHA256()))
        index = next(i for i, field in enumerate(fields) if field[0] == b"b")
        fields[index] = (b"b", base64.b64encode(signature))
        header_value = b"; ".join(b"=".join(x) for x in fields) + self.linesep
        return dkim.fold(header_value, namelen=len(header_name), linesep=self.linesep)


_canonical: dict[tuple[bytes, bytes, bytes], tuple[bytes, bytes]] = {}


def _canonical_headers(policy, headers) -> list[tuple[bytes, bytes]]:
    """dkimpy's header canonicalisation, remembered per field: most fields (From,
    List-Id, MIME-Version, Content-Type, Date within a second) repeat in every message
    of a mailing, and relaxed canonicalisation costs two regular expressions a field."""
    out = []
    algorithm = policy.header_algorithm.name
    for name, value in headers:
        key = (algorithm, name, value)
        found = _canonical.get(key)
        if found is None:
            found = policy.canonicalize_headers([(name, value)])[0]
            if len(_canonical) >= 2048:
                _canonical.clear()  # per-recipient fields would otherwise pile up
            _canonical[key] = found
        out.append(found)
    return out


def sign(message: bytes, keys: list[SigningKey],
         include_headers: tuple[bytes, ...] = SIGNED_HEADERS) -> bytes:
    """``message`` (CRLF bytes) with one DKIM-Signature header per key prepended."""
    if not keys:
        return message
    signer = _OpenSSLDKIM(None, linesep=b"\r\n")
    # dkimpy parses the header block only: splitting and re-joining the whole body
    # line by line costs more than the hash (our bodies are CRLF already).
    end = message.find(b"\r\n\r\n")
    if end < 0:
        signer.set_message(message)
    else:
        signer.headers, _ = dkim.rfc822_parse(message[:end + 2])
        signer.body = message[end + 4:]
    headers = b"".join(signer.sign_with(key, include_headers) for key in keys)
    return headers + message


def load_private_key(pem: bytes):
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey):
        raise ValueError("DKIM keys must be RSA or Ed25519")
    return key


_key_cache: dict[tuple[str, str, tuple[str, ...]], list[SigningKey]] = {}


def keys_for(domain: str, key_dir: Path, selectors: tuple[str, ...]) -> list[SigningKey]:
    """Signing keys for ``domain`` (cached); empty when the folder has none."""
    cache_key = (domain, str(key_dir), selectors)
    found = _key_cache.get(cache_key)
    if found is not None:
        return found
    found = []
    for selector in selectors:
        if not selector:
            continue
        path = Path(key_dir) / domain / f"{selector}.pem"
        if path.exists():
            found.append(SigningKey(domain.encode(), selector.encode(),
                                    load_private_key(path.read_bytes())))
    if not found:
        logger.warning("dkim.no_key", extra={"domain": domain, "key_dir": str(key_dir)})
    _key_cache[cache_key] = found
    return found


def generate_rsa_key(key_dir: Path, domain: str, selector: str, bits: int = 2048) -> str:
    """Write a new key as ``<dir>/<domain>/<selector>.pem``; return the DNS TXT value."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    folder = Path(key_dir) / domain
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{selector}.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                       serialization.PrivateFormat.TraditionalOpenSSL,
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return dns_record(key)


def dns_record(key) -> str:
    public = key.public_key().public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                            serialization.PublicFormat.Raw)
        return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode()}"
    return f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"
