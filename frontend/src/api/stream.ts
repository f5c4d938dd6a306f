import { openStream } from "./client";
import type {
  LiveStreamDelta,
  LiveStreamDone,
  LiveStreamError,
  LiveStreamReady,
  LiveStreamStart,
  LiveStreamStopped,
} from "./types";

/** One server-sent event of a live turn, as documented on the stream endpoint. */
export type LiveStreamEvent =
  | { event: "start"; data: LiveStreamStart }
  | { event: "delta"; data: LiveStreamDelta }
  | { event: "done"; data: LiveStreamDone }
  | { event: "ready"; data: LiveStreamReady }
  | { event: "stopped"; data: LiveStreamStopped }
  | { event: "error"; data: LiveStreamError };

/** The events that end a turn's stream; exactly one comes last. */
export type ClosingEvent = "ready" | "stopped" | "error";
const CLOSING = new Set<string>(["ready", "stopped", "error"]);
const KNOWN = new Set<string>(["start", "delta", "done", ...CLOSING]);

/** The stream ended (or broke) before its closing event: the connection or the server died. */
export class StreamBroken extends Error {
  constructor() {
    super("The connection to the server was lost while the replies were being written.");
    this.name = "StreamBroken";
  }
}

/**
 * Streams the open turn's two candidates, calling `onEvent` for each event in order, and
 * resolves with the name of the closing event. Refusals before the stream (409: the turn is
 * not waiting for candidates, or no model) reject with an ApiError; a stream that stops short
 * rejects with StreamBroken; aborting `signal` rejects with the abort's error.
 */
export async function streamLiveTurn(
  sessionId: number,
  { regenerate = false, signal }: { regenerate?: boolean; signal?: AbortSignal },
  onEvent: (event: LiveStreamEvent) => void,
): Promise<ClosingEvent> {
  const response = await openStream(`/api/v1/sessions/${sessionId}/stream/`, { regenerate }, signal);
  if (!response.body) throw new StreamBroken();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const parser = new EventParser();
  try {
    for (;;) {
      let chunk: ReadableStreamReadResult<Uint8Array>;
      try {
        chunk = await reader.read();
      } catch (error) {
        if (signal?.aborted) throw error;
        throw new StreamBroken();
      }
      if (chunk.done) break;
      for (const event of parser.push(decoder.decode(chunk.value, { stream: true }))) {
        onEvent(event);
        if (CLOSING.has(event.event)) return event.event as ClosingEvent;
      }
    }
  } finally {
    reader.releaseLock();
  }
  throw new StreamBroken();
}

/** Splits text/event-stream into events; keeps an unfinished event until the rest arrives. */
export class EventParser {
  private buffer = "";

  push(text: string): LiveStreamEvent[] {
    this.buffer += text.replace(/\r\n?/g, "\n");
    const blocks = this.buffer.split("\n\n");
    this.buffer = blocks.pop() ?? "";
    return blocks.map(parseBlock).filter((event): event is LiveStreamEvent => event !== null);
  }
}

function parseBlock(block: string): LiveStreamEvent | null {
  let name = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (!line || line.startsWith(":")) continue; // a comment (keep-alive)
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (!KNOWN.has(name) || data.length === 0) return null;
  try {
    return { event: name, data: JSON.parse(data.join("\n")) } as LiveStreamEvent;
  } catch {
    return null;
  }
}
