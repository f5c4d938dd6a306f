import { describe, expect, it, vi } from "vitest";
import { EventParser, StreamBroken, streamLiveTurn, type LiveStreamEvent } from "./stream";

function sseResponse(chunks: string[], { breakAtEnd = false } = {}): Response {
  const encoder = new TextEncoder();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      if (breakAtEnd) controller.error(new TypeError("network error"));
      else controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
}

describe("EventParser", () => {
  it("joins events split across chunks and skips comments, unknown events and bad JSON", () => {
    const parser = new EventParser();
    expect(parser.push('event: delta\ndata: {"label": "A", "te')).toEqual([]);
    expect(parser.push('xt": "Hi"}\n\n: keep-alive\n\nevent: mystery\ndata: {}\n\n')).toEqual([
      { event: "delta", data: { label: "A", text: "Hi" } },
    ]);
    expect(parser.push('event: delta\r\ndata: not json\r\n\r\nevent: stopped\r\ndata: {"reason": "judged"}\r\n\r\n')).toEqual([
      { event: "stopped", data: { reason: "judged" } },
    ]);
  });
});

describe("streamLiveTurn", () => {
  it("posts with the CSRF token and hands each event over until the closing one", async () => {
    const fetchMock = vi.fn(async () =>
      sseResponse([
        'event: delta\ndata: {"label": "A", "text": "He"}\n\nevent: delta\ndata: {"label": "B", ',
        '"text": "Yo"}\n\nevent: error\ndata: {"message": "down"}\n\nevent: delta\ndata: {"label": "A", "text": "late"}\n\n',
      ]),
    );
    vi.stubGlobal("fetch", fetchMock);
    const events: LiveStreamEvent[] = [];

    const closing = await streamLiveTurn(7, { regenerate: true }, (event) => events.push(event));

    expect(closing).toBe("error");
    expect(events.map((e) => e.event)).toEqual(["delta", "delta", "error"]);
    const [path, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit];
    expect(path).toBe("/api/v1/sessions/7/stream/");
    expect(init.method).toBe("POST");
    expect(JSON.parse(String(init.body))).toEqual({ regenerate: true });
    expect((init.headers as Record<string, string>)["X-CSRFToken"]).toBe("test-csrf-token");
  });

  it("rejects with StreamBroken when the stream ends or breaks before a closing event", async () => {
    vi.stubGlobal("fetch", vi.fn(async () => sseResponse(['event: delta\ndata: {"label": "A", "text": "x"}\n\n'])));
    await expect(streamLiveTurn(1, {}, () => {})).rejects.toBeInstanceOf(StreamBroken);
    vi.stubGlobal("fetch", vi.fn(async () => sseResponse([], { breakAtEnd: true })));
    await expect(streamLiveTurn(1, {}, () => {})).rejects.toBeInstanceOf(StreamBroken);
  });

  it("turns a refusal before the stream into an ApiError with the server's words", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ detail: "write a message first" }), { status: 409 })),
    );
    await expect(streamLiveTurn(1, {}, () => {})).rejects.toMatchObject({ status: 409, message: "write a message first" });
  });
});
