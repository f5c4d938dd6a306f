import asyncio

from asgiref.testing import ApplicationCommunicator

import config.asgi


def http_scope(path: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 1234),
        "server": ("testserver", 80),
    }


async def get(path: str) -> tuple[int, bytes]:
    talk = ApplicationCommunicator(config.asgi.application, http_scope(path))
    await talk.send_input({"type": "http.request", "body": b"", "more_body": False})
    start = await talk.receive_output(timeout=10)
    body = b""
    while True:
        message = await talk.receive_output(timeout=10)
        body += message.get("body", b"")
        if not message.get("more_body"):
            return start["status"], body


def test_plain_calls_are_served_through_the_wsgi_pool():
    status, body = asyncio.run(get("/healthz"))
    assert (status, body) == (200, b'{"status": "ok"}')


def test_streaming_paths_go_to_the_asgi_handler_and_others_do_not(monkeypatch):
    seen = []

    def recorder(name):
        async def app(scope, receive, send):
            seen.append((name, scope["path"]))
            await send({"type": "http.response.start", "status": 204, "headers": []})
            await send({"type": "http.response.body", "body": b""})

        return app

    monkeypatch.setattr(config.asgi, "django_asgi", recorder("asgi"))
    monkeypatch.setattr(config.asgi, "django_wsgi", recorder("wsgi"))
    for path in (
        "/api/v1/sessions/12/stream/",
        "/api/v1/sessions/12/",
        "/api/v1/assignments/next/",
    ):
        asyncio.run(get(path))
    assert seen == [
        ("asgi", "/api/v1/sessions/12/stream/"),
        ("wsgi", "/api/v1/sessions/12/"),
        ("wsgi", "/api/v1/assignments/next/"),
    ]
