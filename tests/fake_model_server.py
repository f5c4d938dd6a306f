"""A real HTTP server on loopback that answers like an OpenAI-compatible model server, scripted.

Each request takes the next scripted reply (a Reply, or a function of the request body that
returns one); when the script is empty, `fallback` answers. Requests are recorded, and so is the
most that were in flight at once. A Reply with `stream` set answers as server-sent events, one
chunk at a time; a client that hangs up mid-stream is counted in `hung_up`.
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
    # Server-sent events: each string is one content delta, sent `chunk_delay` seconds apart.
    stream: list[str] | None = None
    chunk_delay: float = 0.0
    finish_reason: str = "stop"
    drop_after: int | None = None  # close the connection after this many deltas (a crash)


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


def stream_reply(
    *deltas: str, chunk_delay: float = 0.0, drop_after: int | None = None, model: str = "m"
) -> Reply:
    """A streamed chat completion: the deltas, then a finish chunk with usage, then [DONE]."""
    return Reply(
        stream=list(deltas),
        chunk_delay=chunk_delay,
        drop_after=drop_after,
        body={"model": model},
    )


def _sse_chunk(model: str, delta: dict, finish_reason: str | None = None, usage=None) -> bytes:
    chunk = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        "usage": usage,
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


Script = Reply | Callable[[dict], Reply]


class ScriptedServer:
    def __init__(self) -> None:
        self.script: deque[Script] = deque()
        self.fallback: Script = Reply(status=500, body=b"script exhausted")
        self.requests: list[dict] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.hung_up = 0  # streams whose client closed the connection before the end
        self.streams_ended = threading.Semaphore(0)  # released when a stream ends either way
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
                    if reply.stream is not None:
                        self._stream(reply)
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

            def _stream(self, reply: Reply) -> None:
                model = reply.body.get("model", "m") if isinstance(reply.body, dict) else "m"
                self.close_connection = True  # HTTP/1.0: the body ends when we close
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.end_headers()
                try:
                    self._write(_sse_chunk(model, {"role": "assistant", "content": ""}))
                    for i, delta in enumerate(reply.stream or []):
                        if reply.drop_after is not None and i >= reply.drop_after:
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        time.sleep(reply.chunk_delay)
                        self._write(_sse_chunk(model, {"content": delta}))
                    usage = {"prompt_tokens": 5, "completion_tokens": len(reply.stream or [])}
                    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
                    self._write(_sse_chunk(model, {}, reply.finish_reason, usage))
                    self._write(b"data: [DONE]\n\n")
                except (BrokenPipeError, ConnectionResetError):
                    with server._lock:
                        server.hung_up += 1
                finally:
                    server.streams_ended.release()

            def _write(self, data: bytes) -> None:
                self.wfile.write(data)
                self.wfile.flush()

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
