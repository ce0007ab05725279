"""A throwaway CA (trustme) and a certificate for 127.0.0.1, for the HTTPS tests; `renew` replaces the files
with another certificate of the same CA, as cert-manager replaces a Secret's."""
from __future__ import annotations

import os
import ssl
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import trustme


@dataclass(frozen=True)
class Issued:
    cert_file: str
    key_file: str
    client: ssl.SSLContext  # trusts the CA that signed the certificate, and only it
    ca: trustme.CA

    def renew(self, not_after: datetime | None = None, *, only: str = "") -> None:
        """Write a new certificate and key over the files, each swapped in whole (as Kubernetes swaps a
        Secret's); `only` "key" or "certificate": a half-done renewal, whose two files do not belong together."""
        write_leaf(self.ca.issue_cert("127.0.0.1", "localhost", not_after=not_after), self.cert_file,
                   self.key_file, only)


def issue_for_loopback(directory: Path, not_after: datetime | None = None) -> Issued:
    ca = trustme.CA()
    cert_file, key_file = str(directory / "server.crt"), str(directory / "server.key")
    write_leaf(ca.issue_cert("127.0.0.1", "localhost", not_after=not_after), cert_file, key_file)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Issued(cert_file, key_file, client, ca)


def write_leaf(leaf: trustme.LeafCert, cert_file: str, key_file: str, only: str = "") -> None:
    """The leaf's certificate (and chain) and key over the files, each swapped in whole; `only` one of them."""
    files = {"key": (key_file, leaf.private_key_pem.bytes()),
             "certificate": (cert_file, b"".join(blob.bytes() for blob in leaf.cert_chain_pems))}
    for path, content in [files[only]] if only else files.values():
        Path(f"{path}.new").write_bytes(content)
        os.replace(f"{path}.new", path)
