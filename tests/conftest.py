"""Fixtures shared by the test modules."""

from __future__ import annotations

import atexit
import os
import shutil
import ssl
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from llmclients._http.body.dechunk import Dechunker
from llmclients.providers import register
from llmclients.testing import OpenAIEmulator

CERTS = Path(__file__).parent / "certs"

# The command logs every chat to the user's data folder: in the tests, a
# folder of this session's, never the developer's. XDG_DATA_HOME too, for the
# commands run with LLMCLIENTS_* cleared from their environment.
USER_DIR = tempfile.mkdtemp(prefix="llmclients-user-")
os.environ["LLMCLIENTS_USER_PATH"] = os.environ["XDG_DATA_HOME"] = USER_DIR
atexit.register(shutil.rmtree, USER_DIR, True)

# A provider that is not built in, registered before collection: the tests that
# parametrise over the registry (faults, content types, deadlines, memory
# bounds) cover it, and the plugin gives it a toy_emulator fixture.
register("toy", "toy.provider:ToyProvider", emulator="toy.emulator:ToyEmulator")


@pytest.fixture
def ca_bundle() -> str:
    """The test CA (see certs/README), to pass as a client's ``verify``."""
    return str(CERTS / "ca.pem")


@pytest.fixture
def tls_context() -> ssl.SSLContext:
    """An emulator's side of TLS: a certificate for localhost that the test CA signed."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(CERTS / "server.pem", CERTS / "server.key")
    return context


@pytest.fixture
def patient_reuse(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests that count connections: after the protocol's end, wait up to
    2 s (not 50 ms) for the body's last chunk, which an emulator on a loaded
    machine may write late; without it the connection is not reused."""
    monkeypatch.setattr(Dechunker, "GRACE", 2.0)


@pytest.fixture
def https_emulator(tls_context: ssl.SSLContext) -> Iterator[OpenAIEmulator]:
    """The OpenAI emulator over HTTPS; clients verify it with ``ca_bundle``."""
    with OpenAIEmulator(ssl_context=tls_context) as emulator:
        yield emulator
