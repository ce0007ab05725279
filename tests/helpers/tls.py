"""A throwaway CA (trustme) and a certificate for 127.0.0.1, for the HTTPS tests."""
from __future__ import annotations

import ssl
from pathlib import Path
from typing import NamedTuple

import trustme


class Issued(NamedTuple):
    cert_file: str
    key_file: str
    client: ssl.SSLContext  # trusts the CA that signed the certificate, and only it


def issue_for_loopback(directory: Path) -> Issued:
    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1", "localhost")
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    cert_file.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(key_file))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Issued(str(cert_file), str(key_file), client)
