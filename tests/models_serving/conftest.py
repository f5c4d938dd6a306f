import socket
from collections.abc import Iterator

import pytest

from fake_model_server import ScriptedServer


@pytest.fixture
def model_server() -> Iterator[ScriptedServer]:
    yield from ScriptedServer().serve()


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL where nothing listens: connecting is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"
