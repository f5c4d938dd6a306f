import { act, fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Assignment } from "../api/types";
import { makeAssignment, mockApi, sentBodies, type Reply } from "../test/api";
import { ComparePage } from "./ComparePage";

const NEXT = "/api/v1/assignments/next/";
const judgmentPath = (id: number) => `/api/v1/assignments/${id}/submit-and-next/`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// Submit-and-next answers with the stored judgment and the following pair (or null).
const created = (id: number, choice: number, next: Assignment | null = null): Reply => ({
  status: 201,
  body: {
    judgment: { id, kind: "pairwise", choice, both_bad: false, created_at: "2030-01-01T00:00:00Z" },
    next,
  },
});

function renderPage() {
  const onAuthProblem = vi.fn();
  render(<ComparePage onAuthProblem={onAuthProblem} />);
  return { onAuthProblem };
}

/** Like a person: press the digit, see it selected, then press Enter. */
async function chooseByKeyAndSubmit(key: string, label: string) {
  fireEvent.keyDown(document.body, { key });
  await waitFor(() => expect(screen.getByRole("radio", { name: label }).getAttribute("aria-checked")).toBe("true"));
  fireEvent.keyDown(document.body, { key: "Enter" });
}

const submitButton = () => screen.getByRole("button", { name: /^(Submit|Saving…)$/ });

describe("ComparePage", () => {
  it("shows the prompt with roles, and both candidates as markdown without raw HTML, with a raw view", async () => {
    mockApi({
      [`GET ${NEXT}`]: {
        status: 200,
        body: {
          assignment: makeAssignment(1, {
            candidates: [
              { label: "A", content: "<b>not bold</b>\n  indented **strong**" },
              { label: "B", content: "Plain B" },
            ],
          }),
        },
      },
    });
    renderPage();

    const candidateA = await screen.findByTestId("candidate-A");
    expect(screen.getByRole("heading", { name: "Which response is better?" })).toBeTruthy();
    expect(candidateA.textContent).toContain("<b>not bold</b>");
    expect(candidateA.querySelector("b")).toBeNull();
    expect(candidateA.querySelector("strong")?.textContent).toBe("strong");
    fireEvent.click(within(candidateA).getByRole("button", { name: "Show raw text of response A" }));
    expect(candidateA.querySelector("pre")?.textContent).toBe("<b>not bold</b>\n  indented **strong**");
    expect(screen.getByTestId("candidate-B").textContent).toContain("Plain B");
    const prompt = screen.getByRole("list", { name: "Prompt" });
    expect(within(prompt).getByText("System")).toBeTruthy();
    expect(within(prompt).getByText("Question number 1?")).toBeTruthy();
    expect(screen.getAllByRole("radio")).toHaveLength(5);
    expect(screen.getByText("Judged this session: 0")).toBeTruthy();
  });

  it("keeps Submit disabled until a choice is made", async () => {
    mockApi({ [`GET ${NEXT}`]: { status: 200, body: { assignment: makeAssignment(1) } } });
    renderPage();
    await screen.findByTestId("candidate-A");
    expect(submitButton()).toHaveProperty("disabled", true);
    fireEvent.click(screen.getByRole("radio", { name: "Tie" }));
    expect(submitButton()).toHaveProperty("disabled", false);
  });

  it("posts the choice, key and time spent, and shows the pair that comes back", async () => {
    const now = vi.spyOn(performance, "now").mockReturnValue(1_000);
    const fetchMock = mockApi({
      [`GET ${NEXT}`]: [
        { status: 200, body: { assignment: makeAssignment(1) } },
        { status: 200, body: { assignment: makeAssignment(2) } },
      ],
      [`POST ${judgmentPath(1)}`]: created(10, 4, makeAssignment(2)),
    });
    renderPage();
    await screen.findByTestId("candidate-A");

    now.mockReturnValue(4_250);
    fireEvent.click(screen.getByRole("radio", { name: "B is better" }));
    fireEvent.click(submitButton());

    await waitFor(() => expect(screen.getByTestId("candidate-A").textContent).toContain("Answer A for 2"));
    const [body] = sentBodies(fetchMock, "POST", judgmentPath(1)) as Record<string, unknown>[];
    expect(body).toEqual({ choice: 4, idempotency_key: expect.stringMatching(UUID), time_spent_ms: 3_250, comment: "" });
    const [, init] = fetchMock.mock.calls.find(([url]) => url === judgmentPath(1))!;
    expect(init?.credentials).toBe("same-origin");
    expect((init?.headers as Record<string, string>)["X-CSRFToken"]).toBe("test-csrf-token");
    expect(screen.getByText("Judged this session: 1")).toBeTruthy();
    expect(screen.getAllByRole("radio").every((radio) => radio.getAttribute("aria-checked") === "false")).toBe(true);
  });

  it("judges by keyboard alone; typing in the comment does not trigger shortcuts", async () => {
    const fetchMock = mockApi({
      [`GET ${NEXT}`]: [
        { status: 200, body: { assignment: makeAssignment(1) } },
        { status: 200, body: { assignment: null } },
      ],
      [`POST ${judgmentPath(1)}`]: created(10, 2),
    });
    renderPage();
    await screen.findByTestId("candidate-A");

    fireEvent.keyDown(document.body, { key: "2" });
    const comment = screen.getByLabelText("Comment (optional)");
    fireEvent.keyDown(comment, { key: "5" });
    fireEvent.keyDown(comment, { key: "?" });
    fireEvent.keyDown(comment, { key: "Enter" });
    fireEvent.change(comment, { target: { value: "5 stars?\n" } });
    expect(screen.getByRole("radio", { name: "A is better" }).getAttribute("aria-checked")).toBe("true");
    expect(screen.queryByRole("heading", { name: "Keyboard shortcuts" })).toBeNull();
    expect(sentBodies(fetchMock, "POST", judgmentPath(1))).toHaveLength(0);

    fireEvent.keyDown(document.body, { key: "Enter" });
    await screen.findByRole("heading", { name: "No more tasks to judge right now" });
    expect(sentBodies(fetchMock, "POST", judgmentPath(1))).toEqual([
      expect.objectContaining({ choice: 2, comment: "5 stars?" }),
    ]);
  });

  it("sends one request for a double click or repeated Enter and shows Saving…", async () => {
    let release: (reply: Reply) => void = () => {};
    const fetchMock = mockApi({
      [`GET ${NEXT}`]: [
        { status: 200, body: { assignment: makeAssignment(1) } },
        { status: 200, body: { assignment: makeAssignment(2) } },
      ],
      [`POST ${judgmentPath(1)}`]: () => new Promise<Reply>((resolve) => (release = resolve)),
    });
    renderPage();
    await screen.findByTestId("candidate-A");

    fireEvent.click(screen.getByRole("radio", { name: "Tie" }));
    const button = submitButton();
    fireEvent.click(button);
    fireEvent.click(button);
    fireEvent.keyDown(document.body, { key: "Enter" });
    fireEvent.submit(button.closest("form")!); // bypasses the disabled button: the in-flight guard must hold
    expect(button.textContent).toBe("Saving…");
    expect(button).toHaveProperty("disabled", true);

    await waitFor(() => expect(sentBodies(fetchMock, "POST", judgmentPath(1))).toHaveLength(1));
    fireEvent.click(button);
    await act(async () => release(created(10, 3, makeAssignment(2))));
    await waitFor(() => expect(screen.getByTestId("candidate-A").textContent).toContain("Answer A for 2"));
    expect(sentBodies(fetchMock, "POST", judgmentPath(1))).toHaveLength(1);
  });

  it("shows the empty state and reloads on request", async () => {
    const fetchMock = mockApi({
      [`GET ${NEXT}`]: [
        { status: 200, body: { assignment: null } },
        { status: 200, body: { assignment: makeAssignment(7) } },
      ],
    });
    renderPage();

    await screen.findByRole("heading", { name: "No more tasks to judge right now" });
    expect(screen.queryByTestId("candidate-A")).toBeNull();
    fireEvent.click(screen.getByRole("button", { name: "Reload" }));
    expect((await screen.findByTestId("candidate-A")).textContent).toContain("Answer A for 7");
    expect(fetchMock).toHaveBeenCalledTimes(2);
  });

  it("shows a 409 message near Submit, keeps the choice and offers the next pair", async () => {
    mockApi({
      [`GET ${NEXT}`]: [
        { status: 200, body: { assignment: makeAssignment(1) } },
        { status: 200, body: { assignment: makeAssignment(2) } },
      ],
      [`POST ${judgmentPath(1)}`]: { status: 409, body: { detail: "This assignment has expired." } },
    });
    renderPage();
    await screen.findByTestId("candidate-A");

    fireEvent.click(screen.getByRole("radio", { name: "A is much better" }));
    fireEvent.click(submitButton());

    expect((await screen.findByRole("alert")).textContent).toBe("This assignment has expired.");
    expect(screen.getByRole("radio", { name: "A is much better" }).getAttribute("aria-checked")).toBe("true");
    expect(submitButton().textContent).toBe("Submit");
    fireEvent.click(screen.getByRole("button", { name: "Load the next task" }));
    await waitFor(() => expect(screen.getByTestId("candidate-A").textContent).toContain("Answer A for 2"));
  });

  it("shows field errors under the field they belong to", async () => {
    mockApi({
      [`GET ${NEXT}`]: { status: 200, body: { assignment: makeAssignment(1) } },
      [`POST ${judgmentPath(1)}`]: {
        status: 400,
        body: {
          detail: "Please correct the errors below.",
          errors: { comment: ["Ensure this field has no more than 2000 characters."] },
        },
      },
    });
    renderPage();
    await screen.findByTestId("candidate-A");
    fireEvent.click(screen.getByRole("radio", { name: "Tie" }));
    fireEvent.click(submitButton());

    expect((await screen.findByRole("alert")).textContent).toBe("Please correct the errors below.");
    const comment = screen.getByLabelText("Comment (optional)");
    expect(comment.getAttribute("aria-invalid")).toBe("true");
    const describedBy = document.getElementById(comment.getAttribute("aria-describedby")!);
    expect(describedBy?.textContent).toBe("Ensure this field has no more than 2000 characters.");
  });

  it("retries after a network error with the same idempotency key", async () => {
    let attempts = 0;
    const fetchMock = mockApi({
      [`GET ${NEXT}`]: [
        { status: 200, body: { assignment: makeAssignment(1) } },
        { status: 200, body: { assignment: null } },
      ],
      [`POST ${judgmentPath(1)}`]: () => {
        attempts += 1;
        if (attempts === 1) throw new TypeError("Failed to fetch");
        return created(10, 5);
      },
    });
    renderPage();
    await screen.findByTestId("candidate-A");

    fireEvent.keyDown(document.body, { key: "5" });
    fireEvent.click(submitButton());
    expect((await screen.findByRole("alert")).textContent).toMatch(/Could not reach the server/);
    expect(screen.getByRole("radio", { name: "B is much better" }).getAttribute("aria-checked")).toBe("true");

    fireEvent.click(submitButton());
    await screen.findByRole("heading", { name: "No more tasks to judge right now" });
    const bodies = sentBodies(fetchMock, "POST", judgmentPath(1)) as { idempotency_key: string }[];
    expect(bodies).toHaveLength(2);
    expect(bodies[1]!.idempotency_key).toBe(bodies[0]!.idempotency_key);
  });

  it("uses a fresh idempotency key for each assignment", async () => {
    const fetchMock = mockApi({
      [`GET ${NEXT}`]: [
        { status: 200, body: { assignment: makeAssignment(1) } },
        { status: 200, body: { assignment: makeAssignment(2) } },
      ],
      [`POST ${judgmentPath(1)}`]: created(10, 1, makeAssignment(2)),
      [`POST ${judgmentPath(2)}`]: created(11, 1),
    });
    renderPage();
    await screen.findByTestId("candidate-A");
    await chooseByKeyAndSubmit("1", "A is much better");
    await waitFor(() => expect(screen.getByTestId("candidate-A").textContent).toContain("Answer A for 2"));
    await chooseByKeyAndSubmit("1", "A is much better");
    await screen.findByText("Judged this session: 2");

    const [first] = sentBodies(fetchMock, "POST", judgmentPath(1)) as { idempotency_key: string }[];
    const [second] = sentBodies(fetchMock, "POST", judgmentPath(2)) as { idempotency_key: string }[];
    expect(first!.idempotency_key).not.toBe(second!.idempotency_key);
  });

  it("toggles the shortcut sheet with ?", async () => {
    mockApi({ [`GET ${NEXT}`]: { status: 200, body: { assignment: makeAssignment(1) } } });
    renderPage();
    await screen.findByTestId("candidate-A");
    fireEvent.keyDown(document.body, { key: "?" });
    expect(screen.getByRole("heading", { name: "Keyboard shortcuts" })).toBeTruthy();
    fireEvent.keyDown(document.body, { key: "?" });
    expect(screen.queryByRole("heading", { name: "Keyboard shortcuts" })).toBeNull();
  });

  it("reports a lost session when loading fails with 403", async () => {
    mockApi({
      [`GET ${NEXT}`]: { status: 403, body: { detail: "Authentication credentials were not provided." } },
    });
    const { onAuthProblem } = renderPage();
    expect((await screen.findByRole("alert")).textContent).toContain("Authentication credentials were not provided.");
    expect(onAuthProblem).toHaveBeenCalled();
  });
});
