import asyncio
import subprocess
import sys
import threading

from asgiref.testing import ApplicationCommunicator
from django.http import HttpResponse

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


def test_a_web_process_starts_with_its_startup_objects_frozen_and_without_statsmodels():
    # A fresh interpreter: this test process has imported everything the other tests need.
    script = (
        "import gc, os, sys\n"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings')\n"
        "import config.asgi\n"
        "print(gc.get_freeze_count(), 'statsmodels' in sys.modules, 'pandas' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    frozen, statsmodels, pandas = done.stdout.split()
    assert int(frozen) > 50_000, "full collections would walk every startup object"
    assert (statsmodels, pandas) == ("False", "False"), "the quality report's imports leaked"


def test_static_files_middleware_keeps_asgi_requests_on_the_event_loop(tmp_path):
    # WhiteNoise's own middleware is sync only: on the ASGI handler (the live streams) Django
    # ran it in a thread and the rest of the request back on the loop, hopping threads.
    from django.test import RequestFactory

    from config.middleware import StaticFilesMiddleware

    (tmp_path / "note.txt").write_text("static text")
    seen = []

    async def downstream(request):
        seen.append((request.path, threading.get_ident()))
        return HttpResponse("from the view")

    async def scenario():
        middleware = StaticFilesMiddleware(downstream)
        middleware.add_files(str(tmp_path), prefix="/extra/")
        assert asyncio.iscoroutinefunction(middleware)
        view = await middleware(RequestFactory().get("/api/v1/sessions/1/stream/"))
        static = await middleware(RequestFactory().get("/extra/note.txt"))
        return view, static, threading.get_ident()

    view, static, loop_thread = asyncio.run(scenario())
    assert view.content == b"from the view"
    assert seen == [("/api/v1/sessions/1/stream/", loop_thread)]
    assert static.status_code == 200
    assert b"".join(static.streaming_content) == b"static text"


def test_static_files_middleware_still_serves_sync_requests(tmp_path):
    from django.test import RequestFactory

    from config.middleware import StaticFilesMiddleware

    (tmp_path / "note.txt").write_text("static text")
    middleware = StaticFilesMiddleware(lambda request: HttpResponse("from the view"))
    middleware.add_files(str(tmp_path), prefix="/extra/")
    assert not asyncio.iscoroutinefunction(middleware)
    assert middleware(RequestFactory().get("/elsewhere/")).content == b"from the view"
    static = middleware(RequestFactory().get("/extra/note.txt"))
    assert b"".join(static.streaming_content) == b"static text"
