"""The one kind of failure a `scorer` command reports in a line rather than a traceback: an input it was
given (an export directory, a public dataset, the LMS mapping, an output's format, a setting it needs left
empty, a port another process holds) that it cannot use. Each reader raises a subclass whose message names
what is wrong and where; the CLI prints it and exits 2, so a mistyped path reads as a mistyped path, not as a
crash of the scorer."""
from __future__ import annotations

import errno
import socket


class UnusableInput(ValueError):
    """An input a command cannot use; the message says which and why."""


def port_taken(error: OSError, variable: str, port: int) -> UnusableInput | None:
    """The one line for a port a server cannot listen on because another process does (the setting's fault, not
    the scorer's); None for any other failure to listen."""
    if error.errno != errno.EADDRINUSE:
        return None
    return UnusableInput(f"{variable} {port}: already in use by another process")


def refuse_taken_port(host: str, port: int, variable: str) -> None:
    """Raise `port_taken`'s line where another process already listens on `host`:`port`: checked before a server
    whose own failure to listen surfaces deep inside its start (the worker's faust web server: a traceback of
    some sixty lines). Any other failure to bind is left to the server to report."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds: TIME_WAIT is no holder
        try:
            probe.bind((host, port))
        except OSError as error:
            if (taken := port_taken(error, variable, port)) is not None:
                raise taken from None
