"""A stand-in for vLLM's OpenAI-compatible server, replaying recorded vLLM answers.

vLLM needs CUDA, so it cannot run in CI. Its answers below are written as vLLM documents and
returns them (docs/features/lora.md, vllm/entrypoints/openai/serving_models.py, the chat
completion and streaming protocol of `vllm serve`), and this server replays them: the shapes
Arbiter's vLLM paths depend on (LoRA loading, `n`, logprobs, usage in streams, /health) are
checked against them in contract tests. It keeps the one piece of state those paths need: which
LoRA adapters are loaded.

Run as a program it behaves like the `vllm` executable for `vllm serve <model> --port N
--served-model-name NAME ...`, so the blue/green start of a new server can be tested end to
end: FAKE_VLLM_STARTUP_SECONDS delays listening (a model loading), FAKE_VLLM_EXIT_CODE makes it
exit at once (a failed start), FAKE_VLLM_RECORD names a file where it writes its argv and the
vLLM variables of its environment.
"""

import copy
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CREATED = 1764450000

PERMISSION = {
    "id": "modelperm-5c1f0a6e2b8d4f55a1f0b7e3c9d2a4e1",
    "object": "model_permission",
    "created": CREATED,
    "allow_create_engine": False,
    "allow_sampling": True,
    "allow_logprobs": True,
    "allow_search_indices": False,
    "allow_view": True,
    "allow_fine_tuning": False,
    "organization": "*",
    "group": None,
    "is_blocking": False,
}

# GET /v1/models: the base model card, then one card per loaded LoRA adapter.
BASE_MODEL_CARD = {
    "id": "/models/policy",
    "object": "model",
    "created": CREATED,
    "owned_by": "vllm",
    "root": "/models/policy",
    "parent": None,
    "max_model_len": 4096,
    "permission": [PERMISSION],
}
LORA_MODEL_CARD = {
    "id": "sql-lora",
    "object": "model",
    "created": CREATED,
    "owned_by": "vllm",
    "root": "/adapters/sql-lora",
    "parent": "/models/policy",
    "max_model_len": None,
    "permission": [PERMISSION],
}

# POST /v1/chat/completions with n=2, logprobs=true, seed=7.
CHAT_COMPLETION_N2_LOGPROBS = {
    "id": "chatcmpl-8c5b0f6f3f0e4d0c9a4f2b1e7d6c5a43",
    "object": "chat.completion",
    "created": CREATED,
    "model": "/models/policy",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "reasoning_content": None,
                "content": "Paris is the capital.",
                "tool_calls": [],
            },
            "logprobs": {
                "content": [
                    {"token": "Paris", "logprob": -0.0312, "bytes": [80, 97, 114, 105, 115]},
                    {"token": " is", "logprob": -0.4521, "bytes": [32, 105, 115]},
                    {"token": " the", "logprob": -0.1187, "bytes": [32, 116, 104, 101]},
                    {"token": " capital", "logprob": -0.9034, "bytes": [32, 99, 97, 112]},
                    {"token": ".", "logprob": -9999.0, "bytes": [46]},
                ]
            },
            "finish_reason": "stop",
            "stop_reason": None,
        },
        {
            "index": 1,
            "message": {
                "role": "assistant",
                "reasoning_content": None,
                "content": "It is Paris.",
                "tool_calls": [],
            },
            "logprobs": {
                "content": [
                    {"token": "It", "logprob": -1.2043, "bytes": [73, 116]},
                    {"token": " is", "logprob": -0.2210, "bytes": [32, 105, 115]},
                    {"token": " Paris", "logprob": -0.0871, "bytes": [32, 80, 97, 114]},
                    {"token": ".", "logprob": -0.0102, "bytes": [46]},
                ]
            },
            "finish_reason": "stop",
            "stop_reason": None,
        },
    ],
    "usage": {
        "prompt_tokens": 14,
        "total_tokens": 23,
        "completion_tokens": 9,
        "prompt_tokens_details": None,
    },
    "prompt_logprobs": None,
    "kv_transfer_params": None,
}

# POST /v1/chat/completions with stream=true, stream_options={"include_usage": true}: a first
# chunk with the role, one chunk per delta (the last one carries finish_reason), then a chunk
# with no choices and the usage, then [DONE]. Without include_usage the usage chunk is absent.
STREAM_CHUNKS = [
    {"index": 0, "delta": {"role": "assistant", "content": ""}, "logprobs": None,
     "finish_reason": None},
    {"index": 0, "delta": {"content": "Paris"}, "logprobs": None, "finish_reason": None},
    {"index": 0, "delta": {"content": " is"}, "logprobs": None, "finish_reason": None},
    {"index": 0, "delta": {"content": " the capital."}, "logprobs": None,
     "finish_reason": "stop", "stop_reason": None},
]  # fmt: skip
STREAM_USAGE = {"prompt_tokens": 14, "total_tokens": 18, "completion_tokens": 4}


def error_body(message: str, err_type: str, code: int) -> dict:
    """vLLM's ErrorResponse (recent releases nest it under "error")."""
    return {"error": {"message": message, "type": err_type, "param": None, "code": code}}


class FakeVLLM:
    """The recorded answers above, served on loopback; LoRA adapters load into ``loras``."""

    def __init__(
        self,
        *,
        base_model: str = "/models/policy",
        runtime_lora: bool = True,
        api_key: str = "",
        port: int = 0,
        host: str = "127.0.0.1",
    ) -> None:
        self.base_model = base_model
        self.runtime_lora = runtime_lora  # VLLM_ALLOW_RUNTIME_LORA_UPDATING
        self.api_key = api_key
        self.loras: dict[str, str] = {}
        self.health_status = 200
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.base_url = f"http://{host}:{self.port}/v1"

    def model_ids(self) -> list[str]:
        return [self.base_model, *self.loras]

    def models_body(self) -> dict:
        cards = [{**BASE_MODEL_CARD, "id": self.base_model, "root": self.base_model}]
        for name, path in self.loras.items():
            cards.append({**LORA_MODEL_CARD, "id": name, "root": path, "parent": self.base_model})
        return {"object": "list", "data": cards}

    def serve(self) -> Iterator["FakeVLLM"]:
        thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        thread.start()
        try:
            yield self
        finally:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> "FakeVLLM":
        self._context = self.serve()
        return next(self._context)

    def __exit__(self, *exc: object) -> None:
        self._context.close()

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.05)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._record({})
                if self.path == "/health":
                    self._send(server.health_status, b"", "application/json")
                elif not self._authorized():
                    return
                elif self.path == "/v1/models":
                    self._json(200, server.models_body())
                else:
                    self._json(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                self._record(body)
                if not self._authorized():
                    return
                if self.path == "/v1/load_lora_adapter" and server.runtime_lora:
                    self._load_lora(body)
                elif self.path == "/v1/chat/completions":
                    self._chat(body)
                else:  # without VLLM_ALLOW_RUNTIME_LORA_UPDATING the route does not exist
                    self._json(404, {"detail": "Not Found"})

            def _record(self, body: dict) -> None:
                entry = {"method": self.command, "path": self.path, **body}
                entry["authorization"] = self.headers.get("Authorization")
                with server._lock:
                    server.requests.append(entry)

            def _authorized(self) -> bool:
                # vLLM's --api-key middleware guards /v1/*; its refusal is this body.
                if server.api_key and self.headers.get("Authorization") != (
                    f"Bearer {server.api_key}"
                ):
                    self._json(401, {"error": "Unauthorized"})
                    return False
                return True

            def _load_lora(self, body: dict) -> None:
                name, path = body.get("lora_name"), body.get("lora_path")
                if not name or not path:
                    message = "Both 'lora_name' and 'lora_path' must be provided."
                    self._json(400, error_body(message, "InvalidUserInput", 400))
                elif name in server.loras:
                    message = f"The lora adapter '{name}' has already been loaded."
                    self._json(400, error_body(message, "InvalidUserInput", 400))
                elif not os.path.isfile(os.path.join(path, "adapter_config.json")):
                    message = f"Loading lora {name} failed: No adapter found for {path}"
                    self._json(404, error_body(message, "NotFoundError", 404))
                else:
                    server.loras[name] = path
                    text = f"Success: LoRA adapter '{name}' added successfully."
                    self._send(200, text.encode(), "text/plain; charset=utf-8")

            def _chat(self, body: dict) -> None:
                model = body.get("model")
                if model not in server.model_ids():
                    message = f"The model `{model}` does not exist."
                    self._json(404, error_body(message, "NotFoundError", 404))
                    return
                if body.get("stream"):
                    self._stream(body)
                    return
                reply = copy.deepcopy(CHAT_COMPLETION_N2_LOGPROBS)
                reply["model"] = model
                n = int(body.get("n") or 1)
                if n == 1:  # one of the recorded samples, by seed, so seeded draws differ
                    choices = reply["choices"]
                    reply["choices"] = [{**choices[(body.get("seed") or 0) % 2], "index": 0}]
                else:
                    reply["choices"] = reply["choices"][:n]
                if not body.get("logprobs"):
                    for choice in reply["choices"]:
                        choice["logprobs"] = None
                self._json(200, reply)

            def _stream(self, body: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream; charset=utf-8")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                head = {
                    "id": "chatcmpl-2b7e1f9c0d3a4e6f8a1b2c3d4e5f6a7b",
                    "object": "chat.completion.chunk",
                    "created": CREATED,
                    "model": body["model"],
                }
                for choice in STREAM_CHUNKS:
                    self._event({**head, "choices": [choice]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    self._event({**head, "choices": [], "usage": STREAM_USAGE})
                self._chunk(b"data: [DONE]\n\n")
                self._chunk(b"")

            def _event(self, data: dict) -> None:
                self._chunk(f"data: {json.dumps(data)}\n\n".encode())

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

            def _json(self, status: int, body: dict) -> None:
                self._send(status, json.dumps(body).encode(), "application/json")

            def _send(self, status: int, data: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


def _option(argv: list[str], name: str, default: str | None = None) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else default


def main(argv: list[str]) -> int:
    """`vllm serve <model> --host H --port N --served-model-name NAME [...]`, faked."""
    if argv[:1] != ["serve"] or len(argv) < 2:
        print("usage: vllm serve <model> [options]", file=sys.stderr)
        return 2
    record = os.environ.get("FAKE_VLLM_RECORD")
    if record:
        env = {k: v for k, v in os.environ.items() if k.startswith("VLLM_")}
        with open(record, "w") as out:
            json.dump({"argv": argv, "env": env, "pid": os.getpid()}, out)
    exit_code = int(os.environ.get("FAKE_VLLM_EXIT_CODE", "0"))
    if exit_code:
        print("RuntimeError: CUDA out of memory (faked)", file=sys.stderr)
        return exit_code
    time.sleep(float(os.environ.get("FAKE_VLLM_STARTUP_SECONDS", "0")))
    server = FakeVLLM(
        base_model=_option(argv, "--served-model-name", argv[1]) or argv[1],
        runtime_lora=os.environ.get("VLLM_ALLOW_RUNTIME_LORA_UPDATING", "").lower()
        in ("1", "true"),
        api_key=os.environ.get("VLLM_API_KEY", ""),
        port=int(_option(argv, "--port", "8000") or 8000),
        host=_option(argv, "--host", "127.0.0.1") or "127.0.0.1",
    )
    print(f"INFO: serving on port {server.port}", flush=True)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
