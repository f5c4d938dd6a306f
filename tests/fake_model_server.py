"""A real HTTP server on loopback that answers like an OpenAI-compatible model server, scripted.

Each request takes the next scripted reply (a Reply, or a function of the request body that
returns one); when the script is empty, `fallback` answers. Requests are recorded, and so is the
most that were in flight at once.
"""

import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    body: dict | bytes = b""
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    hang_up: bool = False  # close the connection without answering


def chat_reply(
    *contents: str, logprobs: list[list[tuple[str, float]]] | None = None, model: str = "m"
) -> Reply:
    """A chat completion in the OpenAI format with one choice per content."""
    choices = []
    for i, content in enumerate(contents):
        choice: dict = {
            "index": i,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
            "logprobs": None,
        }
        if logprobs is not None:
            choice["logprobs"] = {
                "content": [
                    {"token": t, "logprob": lp, "bytes": list(t.encode()), "top_logprobs": []}
                    for t, lp in logprobs[i]
                ]
            }
        choices.append(choice)
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": choices,
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }
    return Reply(body=body)


Script = Reply | Callable[[dict], Reply]


class ScriptedServer:
    def __init__(self) -> None:
        self.script: deque[Script] = deque()
        self.fallback: Script = Reply(status=500, body=b"script exhausted")
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._httpd.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def then(self, *replies: Script) -> "ScriptedServer":
        self.script.extend(replies)
        return self

    def _next(self, request: dict) -> Reply:
        with self._lock:
            self.requests.append(request)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            step = self.script.popleft() if self.script else self.fallback
        return step(request) if callable(step) else step

    def _done(self) -> None:
        with self._lock:
            self.in_flight -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer({"method": "GET", "path": self.path})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                self._answer({"method": "POST", "path": self.path, **body})

            def _answer(self, request: dict) -> None:
                request["authorization"] = self.headers.get("Authorization")
                reply = server._next(request)
                try:
                    time.sleep(reply.delay)
                    if reply.hang_up:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    raw = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body)
                    data = raw.encode() if isinstance(raw, str) else raw
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (a timeout test)
                finally:
                    server._done()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler

    def serve(self) -> Iterator["ScriptedServer"]:
        thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()
