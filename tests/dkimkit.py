"""DKIM keys for tests, made by the openssl command line: a private key file and the TXT
record (``v=DKIM1; k=rsa; p=...``) its selector would publish."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class DkimKey:
    path: Path
    record: bytes  # the DNS TXT answer for SELECTOR._domainkey.DOMAIN


def make_key(folder: Path, kind: str = "rsa", name: str = "dkim.pem") -> DkimKey:
    path = folder / name
    algorithm = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]
    if kind == "ed25519":
        algorithm = ["-algorithm", "ed25519"]
    subprocess.run(
        ["openssl", "genpkey", *algorithm, "-out", str(path)], check=True, capture_output=True
    )
    der = subprocess.run(
        ["openssl", "pkey", "-in", str(path), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    if kind == "ed25519":
        der = der[-32:]  # RFC 8463: p= is the raw 32-byte public key
    p = base64.b64encode(der).decode("ascii")
    return DkimKey(path, f"v=DKIM1; k={kind}; p={p}".encode("ascii"))
