"""HTTPS for the worker and the LMS's door (streams/tls.py): the settings go in pairs and a bad file stops the start."""
from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from helpers.tls import issue_for_loopback
from streams.settings import Settings, SettingsError
from streams.tls import server_context


def test_no_certificate_is_plain_http() -> None:
    assert server_context("", "", "SCORER_WEB_TLS") is None


def test_a_certificate_and_its_key_make_a_tls_1_2_server_context(tmp_path: Path) -> None:
    issued = issue_for_loopback(tmp_path)
    context = server_context(issued.cert_file, issued.key_file, "SCORER_WEB_TLS")
    assert context is not None and context.minimum_version >= ssl.TLSVersion.TLSv1_2


def test_a_missing_file_or_a_key_of_another_certificate_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    issued, other = issue_for_loopback(tmp_path / "a"), issue_for_loopback(tmp_path / "b")
    for cert, key in ((str(tmp_path / "missing.crt"), issued.key_file), (issued.cert_file, other.key_file),
                      (issued.key_file, issued.key_file)):
        with pytest.raises(SettingsError, match="SCORER_INGEST_TLS_CERT_FILE / SCORER_INGEST_TLS_KEY_FILE"):
            server_context(cert, key, "SCORER_INGEST_TLS")


@pytest.mark.parametrize("half", [{"web_tls_cert_file": "server.crt"}, {"web_tls_key_file": "server.key"},
                                  {"ingest_tls_cert_file": "server.crt"}, {"ingest_tls_key_file": "server.key"}])
def test_the_certificate_and_its_key_go_together(half: dict[str, str]) -> None:
    with pytest.raises(SettingsError, match="set both or neither"):
        Settings(**half)
