"""One real daemon for the whole session (see daemon.py); SANDBOXD_BIN names
the binary, else the repo's bin/sandboxd."""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from daemon import Daemon  # noqa: E402

from sandboxd import Client  # noqa: E402


@pytest.fixture(scope="session")
def daemon():
    d = Daemon()
    old = os.environ.get("SANDBOXD_SOCKET")
    os.environ["SANDBOXD_SOCKET"] = d.socket
    try:
        yield d
    finally:
        if old is None:
            os.environ.pop("SANDBOXD_SOCKET", None)
        else:
            os.environ["SANDBOXD_SOCKET"] = old
        rc = d.stop()
        if rc != 0:
            print(f"sandboxd exited with {rc}:\n{d.log()}", file=sys.stderr)


@pytest.fixture()
def client(daemon):
    c = Client(daemon.socket)
    yield c
    c.close()


@pytest.fixture(autouse=True)
def _sandboxd_socket(daemon):
    """Every test talks to the session's daemon through $SANDBOXD_SOCKET, as
    an evaluation script would."""
    yield
