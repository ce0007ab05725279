"""The in-memory tiers (tests/unit, tests/models) run without servers: any attempt to open a
network connection fails the test."""
from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    def refuse(self: socket.socket, address: object) -> None:
        raise RuntimeError(f"in-memory tests use no servers (tried to connect to {address!r}); see tests/integration")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    yield
