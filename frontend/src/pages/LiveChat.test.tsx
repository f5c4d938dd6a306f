import { act, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Session } from "../api/types";
import { makeAssignment, mockApi, sentBodies } from "../test/api";
import { LiveChat } from "./LiveChat";

const SESSION = "/api/v1/sessions/4/";
const STREAM = "/api/v1/sessions/4/stream/";
const TURNS = "/api/v1/sessions/4/turns/";
const END = "/api/v1/sessions/4/end/";
const judgmentPath = (id: number) => `/api/v1/assignments/${id}/judgment/`;

/** A text/event-stream response the test writes to, event by event; aborting the request breaks it. */
class FakeStream {
  private controller!: ReadableStreamDefaultController<Uint8Array>;
  readonly body = new ReadableStream<Uint8Array>({
    start: (controller) => {
      this.controller = controller;
    },
  });
  closed = false;

  respond(init?: RequestInit): Response {
    init?.signal?.addEventListener("abort", () => this.fail());
    return new Response(this.body, { status: 200, headers: { "Content-Type": "text/event-stream" } });
  }

  async send(event: string, data: unknown) {
    await act(async () => {
      this.controller.enqueue(new TextEncoder().encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`));
      await new Promise((resolve) => setTimeout(resolve, 0));
    });
  }

  async close() {
    await act(async () => {
      this.closed = true;
      this.controller.close();
    });
  }

  private fail() {
    if (!this.closed) this.controller.error(new DOMException("The user aborted a request.", "AbortError"));
    this.closed = true;
  }
}

function session(overrides: Partial<Session> = {}): Session {
  return {
    id: 4,
    project: "helpfulness",
    status: "open",
    candidates_per_turn: 2,
    messages: [{ id: 1, role: "user", content: "Hi there" }],
    turn: { id: 9, state: "awaiting_candidates", assignment: null },
    ...overrides,
  };
}

/** The live turn's pair as the `start` event brings it: contents still empty. */
const emptyPair = (id: number) =>
  makeAssignment(id, {
    prompt: [{ role: "user", content: "Hi there" }],
    candidates: [
      { label: "A", content: "" },
      { label: "B", content: "" },
    ],
  });

function renderChat() {
  const onAuthProblem = vi.fn();
  render(<LiveChat sessionId={4} onAuthProblem={onAuthProblem} />);
  return { onAuthProblem };
}

const panel = (label: string) => screen.getByTestId(`candidate-${label}`);
const streamState = (label: string) => screen.getByTestId(`stream-state-${label}`).textContent;

describe("LiveChat stream view", () => {
  it("streams two replies side by side, takes a judgment mid-stream, then continues from the chosen reply", async () => {
    const stream = new FakeStream();
    const nextStream = new FakeStream();
    const streams = [stream, nextStream];
    const chosen = "Hello **there** <img src=x onerror=alert(1)>";
    let judgedReply: (() => void) | null = null;
    const fetchMock = mockApi({
      [`GET ${SESSION}`]: [
        { status: 200, body: session() },
        {
          status: 200,
          body: session({
            messages: [
              { id: 1, role: "user", content: "Hi there" },
              { id: 2, role: "assistant", content: chosen },
            ],
            turn: { id: 9, state: "judged", assignment: null },
          }),
        },
      ],
      [`POST ${STREAM}`]: (init) => streams.shift()!.respond(init),
      [`POST ${judgmentPath(31)}`]: () =>
        new Promise((resolve) => {
          judgedReply = () =>
            resolve({ status: 201, body: { id: 1, kind: "pairwise", choice: 1, both_bad: false, created_at: "2030-01-01T00:00:00Z" } });
        }),
      [`POST ${TURNS}`]: {
        status: 201,
        body: session({
          messages: [
            { id: 1, role: "user", content: "Hi there" },
            { id: 2, role: "assistant", content: chosen },
            { id: 3, role: "user", content: "And then?" },
          ],
          turn: { id: 10, state: "awaiting_candidates", assignment: null },
        }),
      },
    });
    renderChat();

    await waitFor(() => expect(sentBodies(fetchMock, "POST", STREAM)).toEqual([{ regenerate: false }]));
    await stream.send("start", { turn: 9, assignment: emptyPair(31) });
    expect(screen.getByRole("heading", { name: "Which reply is better?" })).toBeTruthy();
    expect(streamState("A")).toContain("Writing…");
    await stream.send("delta", { label: "A", text: "Hello **the" });
    await stream.send("delta", { label: "B", text: "Bonjour" });
    await stream.send("delta", { label: "A", text: "re** <img src=x onerror=alert(1)>" });

    // Streamed text renders as sanitised Markdown, side by side, labelled A and B only.
    expect(panel("A").querySelector("strong")?.textContent).toBe("there");
    expect(panel("A").querySelector("img")).toBeNull();
    expect(panel("A").textContent).toContain("<img src=x onerror=alert(1)>");
    expect(panel("B").textContent).toContain("Bonjour");
    expect(within(panel("A")).getByRole("heading").textContent).toBe("Response A");

    // Judge before the streams end, by keyboard.
    fireEvent.keyDown(document.body, { key: "1" });
    await waitFor(() =>
      expect(screen.getByRole("radio", { name: "A is much better" }).getAttribute("aria-checked")).toBe("true"),
    );
    fireEvent.keyDown(document.body, { key: "Enter" });
    await waitFor(() => expect(judgedReply).not.toBeNull());
    const [judgment] = sentBodies(fetchMock, "POST", judgmentPath(31)) as { choice: number; idempotency_key: string }[];
    expect(judgment).toMatchObject({ choice: 1 });
    expect(judgment!.idempotency_key).toBeTruthy();
    await act(async () => judgedReply!());
    expect(screen.getByRole("button", { name: "Continuing…" })).toBeTruthy();

    // The server stops both streams and stores them as cut off; then the reply joins.
    await stream.send("done", { label: "A", finish_reason: "judged", incomplete: true });
    await stream.send("done", { label: "B", finish_reason: "judged", incomplete: true });
    await stream.send("stopped", { reason: "judged" });
    await stream.close();

    const transcript = await screen.findByRole("list", { name: "Conversation" });
    await waitFor(() => expect(within(transcript).getAllByTestId("chat-message")).toHaveLength(2));
    expect(transcript.querySelector(".message-assistant strong")?.textContent).toBe("there");
    expect(transcript.querySelector("img")).toBeNull();
    expect(screen.queryByRole("heading", { name: "Which reply is better?" })).toBeNull();

    // The next message continues the conversation and opens the next stream.
    const box = screen.getByLabelText("Your next message");
    await waitFor(() => expect(document.activeElement).toBe(box));
    fireEvent.change(box, { target: { value: "And then?" } });
    fireEvent.keyDown(box, { key: "Enter" });
    await waitFor(() => expect(sentBodies(fetchMock, "POST", TURNS)).toEqual([{ content: "And then?" }]));
    await waitFor(() => expect(sentBodies(fetchMock, "POST", STREAM)).toHaveLength(2));
    expect(screen.getByText("And then?")).toBeTruthy();
    expect(screen.getByRole("status").textContent).toContain("Asking for two replies");
  });

  it("streams three replies, ranks them by keyboard mid-stream and sends the ranking", async () => {
    const stream = new FakeStream();
    const fetchMock = mockApi({
      [`GET ${SESSION}`]: [
        { status: 200, body: session({ candidates_per_turn: 3 }) },
        {
          status: 200,
          body: session({
            candidates_per_turn: 3,
            messages: [
              { id: 1, role: "user", content: "Hi there" },
              { id: 2, role: "assistant", content: "Gamma reply" },
            ],
            turn: { id: 9, state: "judged", assignment: null },
          }),
        },
      ],
      [`POST ${STREAM}`]: (init) => stream.respond(init),
      [`POST ${judgmentPath(32)}`]: {
        status: 201,
        body: { id: 2, kind: "ranking", choice: null, both_bad: false, created_at: "2030-01-01T00:00:00Z" },
      },
    });
    renderChat();

    await waitFor(() => expect(screen.getByRole("status").textContent).toContain("Asking for three replies"));
    const three = makeAssignment(32, {
      interface: "ranking",
      prompt: [{ role: "user", content: "Hi there" }],
      candidates: ["A", "B", "C"].map((label) => ({ label, content: "" })),
    });
    await stream.send("start", { turn: 9, assignment: three });
    expect(screen.getByRole("heading", { name: "Rank the replies, best first" })).toBeTruthy();
    expect(screen.queryByRole("radiogroup")).toBeNull(); // no pairwise scale for three
    await stream.send("delta", { label: "A", text: "Alpha reply" });
    await stream.send("delta", { label: "C", text: "Gamma reply" });
    expect(panel("C").textContent).toContain("Gamma reply");
    expect(screen.getByTestId("rank-item-C").textContent).toContain("Gamma reply");
    expect(streamState("B")).toContain("Writing…");

    // Move C to the top with Alt+Up twice, then submit with Enter while B still streams.
    const itemC = screen.getByTestId("rank-item-C");
    itemC.focus();
    fireEvent.keyDown(itemC, { key: "ArrowUp", altKey: true });
    fireEvent.keyDown(screen.getByTestId("rank-item-C"), { key: "ArrowUp", altKey: true });
    await waitFor(() =>
      expect(screen.getByTestId("rank-item-C").getAttribute("aria-label")).toBe("Response C, rank 1 of 3"),
    );
    fireEvent.keyDown(document.body, { key: "Enter" });
    await waitFor(() => expect(sentBodies(fetchMock, "POST", judgmentPath(32))).toHaveLength(1));
    expect(sentBodies(fetchMock, "POST", judgmentPath(32))[0]).toMatchObject({ ranking: ["C", "A", "B"] });

    await stream.send("stopped", { reason: "judged" });
    await stream.close();
    const transcript = await screen.findByRole("list", { name: "Conversation" });
    await waitFor(() => expect(within(transcript).getAllByTestId("chat-message")).toHaveLength(2));
    expect(transcript.textContent).toContain("Gamma reply");
  });

  it("says when the model is down, keeps the turn, and tries again", async () => {
    const failing = new FakeStream();
    const working = new FakeStream();
    const streams = [failing, working];
    mockApi({
      [`GET ${SESSION}`]: { status: 200, body: session() },
      [`POST ${STREAM}`]: (init) => streams.shift()!.respond(init),
    });
    renderChat();

    await waitFor(() => expect(streams).toHaveLength(1));
    await failing.send("start", { turn: 9, assignment: emptyPair(31) });
    await failing.send("delta", { label: "A", text: "partial" });
    await failing.send("error", { message: "The model server is not answering; your conversation is saved, try again." });

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toBe("The model server is not answering; your conversation is saved, try again.");
    expect(screen.queryByTestId("candidate-A")).toBeNull();
    expect(screen.getByText("Hi there")).toBeTruthy();

    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    await waitFor(() => expect(streams).toHaveLength(0));
    await working.send("start", { turn: 9, assignment: emptyPair(32) });
    await working.send("delta", { label: "A", text: "One" });
    await working.send("delta", { label: "B", text: "Two" });
    await working.send("done", { label: "A", finish_reason: "stop", incomplete: false });
    await working.send("done", { label: "B", finish_reason: "length", incomplete: false });
    const ready = makeAssignment(32, {
      candidates: [
        { label: "A", content: "One" },
        { label: "B", content: "Two" },
      ],
    });
    await working.send("ready", { assignment: ready });
    expect(streamState("A")).toContain("Finished");
    expect(streamState("B")).toContain("reached the length limit");
    expect(screen.queryByRole("alert")).toBeNull();
    expect(panel("B").textContent).toContain("Two");
  });

  it("shows a refusal before the stream (no model) in words", async () => {
    mockApi({
      [`GET ${SESSION}`]: { status: 200, body: session() },
      [`POST ${STREAM}`]: { status: 409, body: { detail: "no model is set up for live sessions here; ask a researcher" } },
    });
    renderChat();
    expect((await screen.findByRole("alert")).textContent).toBe("no model is set up for live sessions here; ask a researcher");
    expect(screen.getByRole("button", { name: "Try again" })).toBeTruthy();
  });

  it("regenerates: the running stream is dropped and a new pair is asked for with regenerate", async () => {
    const first = new FakeStream();
    const second = new FakeStream();
    const streams = [first, second];
    const fetchMock = mockApi({
      [`GET ${SESSION}`]: { status: 200, body: session() },
      [`POST ${STREAM}`]: (init) => streams.shift()!.respond(init),
    });
    renderChat();
    await waitFor(() => expect(streams).toHaveLength(1));
    await first.send("start", { turn: 9, assignment: emptyPair(31) });
    await first.send("delta", { label: "A", text: "old text" });
    fireEvent.keyDown(document.body, { key: "2" }); // a choice for the old pair is not carried over
    await waitFor(() =>
      expect(screen.getByRole("radio", { name: "A is better" }).getAttribute("aria-checked")).toBe("true"),
    );

    fireEvent.click(screen.getByRole("button", { name: "Regenerate both replies" }));
    await waitFor(() => expect(sentBodies(fetchMock, "POST", STREAM)).toEqual([{ regenerate: false }, { regenerate: true }]));
    await second.send("start", { turn: 9, assignment: emptyPair(33) });
    await second.send("delta", { label: "A", text: "new text" });
    expect(panel("A").textContent).toContain("new text");
    expect(panel("A").textContent).not.toContain("old text");
    expect(screen.getAllByRole("radio").every((radio) => radio.getAttribute("aria-checked") === "false")).toBe(true);
  });

  it("keeps an unsent message in the box and on the device when sending fails", async () => {
    mockApi({
      [`GET ${SESSION}`]: { status: 200, body: session({ messages: [], turn: null }) },
      [`POST ${TURNS}`]: { status: 503, body: { detail: "Service unavailable." } },
    });
    const { unmount } = render(<LiveChat sessionId={4} onAuthProblem={vi.fn()} />);
    const box = await screen.findByLabelText("Your message");
    fireEvent.change(box, { target: { value: "What is **2+2**?" } });
    fireEvent.click(screen.getByRole("button", { name: "Send" }));

    expect((await screen.findByRole("alert")).textContent).toContain("Nothing you entered is lost");
    expect((box as HTMLTextAreaElement).value).toBe("What is **2+2**?");

    // A reload (a fresh mount) finds the draft.
    unmount();
    render(<LiveChat sessionId={4} onAuthProblem={vi.fn()} />);
    expect(((await screen.findByLabelText("Your message")) as HTMLTextAreaElement).value).toBe("What is **2+2**?");
  });

  it("shows the pair still waiting for a judgment after a reload, and ends the conversation", async () => {
    const held = makeAssignment(40, {
      candidates: [
        { label: "A", content: "Stored A" },
        { label: "B", content: "Stored B" },
      ],
    });
    const fetchMock = mockApi({
      [`GET ${SESSION}`]: { status: 200, body: session({ turn: { id: 9, state: "judging", assignment: held } }) },
      [`POST ${END}`]: { status: 200, body: session({ status: "ended", turn: { id: 9, state: "judging", assignment: held } }) },
    });
    renderChat();
    expect((await screen.findByTestId("candidate-B")).textContent).toContain("Stored B");
    expect(sentBodies(fetchMock, "POST", STREAM)).toEqual([]); // a drawn pair is never silently redrawn

    fireEvent.keyDown(document.body, { key: "?" });
    expect(screen.getByRole("heading", { name: "Keyboard shortcuts" })).toBeTruthy();
    fireEvent.keyDown(document.body, { key: "Escape" });

    fireEvent.click(screen.getByRole("button", { name: "End conversation" }));
    expect(await screen.findByText("This conversation has ended.")).toBeTruthy();
    expect(screen.queryByTestId("candidate-A")).toBeNull();
    expect(screen.queryByLabelText(/message/)).toBeNull();
  });
});
