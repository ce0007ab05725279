"""HTTPS for the servers that answer with students' data (the worker's read API and console, the LMS's door):
without a proxy in front, a token and the data it reads would cross the network in the clear."""
from __future__ import annotations

import ssl

from streams.settings import SettingsError


def server_context(cert_file: str, key_file: str, variable: str) -> ssl.SSLContext | None:
    """The TLS context of a server whose settings name `cert_file` and `key_file` (`variable` is their
    settings' prefix, for the error), or None for plain HTTP. TLS 1.2 at least; a file that is missing,
    unreadable or not the certificate's key stops the process at start, naming the variable."""
    if not cert_file:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as error:  # the files' names may be shown; their contents never are
        raise SettingsError(f"{variable}_CERT_FILE / {variable}_KEY_FILE: {type(error).__name__}: "
                            f"{getattr(error, 'strerror', None) or getattr(error, 'reason', None) or error}") from None
    return context
