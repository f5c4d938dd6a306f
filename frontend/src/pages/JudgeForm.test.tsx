import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { Assignment } from "../api/types";
import { makeAssignment, mockApi, sentBodies, type Reply } from "../test/api";
import { ComparePage } from "./ComparePage";

const NEXT = "/api/v1/assignments/next/";
const submitPath = (id: number) => `/api/v1/assignments/${id}/submit-and-next/`;
const THREE = [
  { label: "A", content: "Paris is the capital." },
  { label: "B", content: "Lyon is the capital." },
  { label: "C", content: "It is **Paris**." },
];
const RUBRIC = {
  "1": "Very poor",
  "2": "Poor",
  "3": "Fair",
  "4": "Good",
  "5": "Excellent: accurate, clear and especially helpful",
};

const created = (kind: string, next: Assignment | null = null): Reply => ({
  status: 201,
  body: { judgment: { id: 9, kind, choice: null, both_bad: false, created_at: "2030-01-01T00:00:00Z" }, next },
});

function serve(first: Assignment, submit: Reply | (() => Reply) = created(first.interface)) {
  return mockApi({
    [`GET ${NEXT}`]: { status: 200, body: { assignment: first } },
    [`POST ${submitPath(first.id)}`]: submit,
  });
}

function renderPage() {
  return render(<ComparePage onAuthProblem={vi.fn()} />);
}

const submitButton = () => screen.getByRole("button", { name: /^(Submit|Saving…)$/ });

describe("JudgeForm: ranking", () => {
  it("ranks by keyboard alone and submits the order with Enter", async () => {
    const fetchMock = serve(makeAssignment(1, { interface: "ranking", candidates: THREE }));
    renderPage();
    await screen.findByRole("heading", { name: "Rank the responses from best to worst" });
    expect(screen.getAllByTestId(/^candidate-/)).toHaveLength(3);

    const c = screen.getByTestId("rank-item-C");
    c.focus();
    fireEvent.keyDown(c, { key: "ArrowUp", altKey: true });
    fireEvent.keyDown(c, { key: "ArrowUp", altKey: true });
    const b = screen.getByTestId("rank-item-B");
    fireEvent.keyDown(b, { key: " " });
    fireEvent.keyDown(b, { key: "ArrowDown" });
    fireEvent.keyDown(b, { key: " " });
    fireEvent.keyDown(b, { key: "Enter" });

    await screen.findByRole("heading", { name: "No more tasks to judge right now" });
    expect(sentBodies(fetchMock, "POST", submitPath(1))).toEqual([
      expect.objectContaining({ ranking: ["C", "A", "B"], comment: "" }),
    ]);
  });
});

describe("JudgeForm: rating", () => {
  const assignment = () =>
    makeAssignment(2, { interface: "rating", candidates: THREE.slice(0, 2), rating_rubric: RUBRIC, rating_aspects: ["tone"] });

  it("shows the rubric, asks for every overall rating, and sends ratings per response", async () => {
    const fetchMock = serve(assignment());
    renderPage();
    await screen.findByRole("heading", { name: "Rate each response" });
    expect(screen.getAllByText("Excellent: accurate, clear and especially helpful")).toHaveLength(2);
    expect(submitButton()).toHaveProperty("disabled", true);
    expect(screen.getByText("Give an overall rating to response A, response B.")).toBeTruthy();

    const ratingA = within(screen.getByTestId("candidate-A"));
    fireEvent.click(within(ratingA.getByRole("group", { name: /Overall/ })).getByLabelText(/^5/));
    fireEvent.click(within(ratingA.getByRole("group", { name: /Tone/ })).getByLabelText(/^3/));
    expect(screen.getByText("Give an overall rating to response B.")).toBeTruthy();
    fireEvent.keyDown(within(screen.getByTestId("candidate-B")).getAllByRole("radio")[0]!, { key: "2" });
    fireEvent.click(submitButton());

    await screen.findByRole("heading", { name: "No more tasks to judge right now" });
    expect(sentBodies(fetchMock, "POST", submitPath(2))).toEqual([
      expect.objectContaining({ ratings: { A: { overall: 5, tone: 3 }, B: { overall: 2 } } }),
    ]);
  });

  it("shows a server error about the ratings next to them", async () => {
    serve(assignment(), {
      status: 400,
      body: { detail: "Invalid input: ratings. A: unknown aspect 'x'", errors: { ratings: ["A: unknown aspect 'x'"] } },
    });
    renderPage();
    await screen.findByRole("heading", { name: "Rate each response" });
    for (const label of ["A", "B"]) {
      const overall = within(screen.getByTestId(`candidate-${label}`)).getByRole("group", { name: /Overall/ });
      fireEvent.click(within(overall).getByLabelText(/^4/));
    }
    fireEvent.click(submitButton());
    expect((await screen.findByRole("alert")).textContent).toBe("Invalid input: ratings. A: unknown aspect 'x'");
    expect(document.getElementById("ratings-error")?.textContent).toBe("A: unknown aspect 'x'");
  });
});

describe("JudgeForm: thumbs and edit", () => {
  it("sends thumbs down with a rewrite, flags and a comment", async () => {
    const fetchMock = serve(makeAssignment(3, { interface: "thumbs", candidates: [THREE[1]!] }));
    renderPage();
    await screen.findByRole("heading", { name: "Is this response good?" });

    fireEvent.keyDown(document.body, { key: "2" });
    fireEvent.keyDown(document.body, { key: "e" });
    const editor = screen.getByLabelText("Your improved response B");
    fireEvent.change(editor, { target: { value: "Paris is the capital." } });
    fireEvent.click(screen.getByLabelText("Nonsense or broken"));
    fireEvent.change(screen.getByLabelText("Comment (optional)"), { target: { value: "wrong city" } });
    fireEvent.click(submitButton());

    await screen.findByRole("heading", { name: "No more tasks to judge right now" });
    expect(sentBodies(fetchMock, "POST", submitPath(3))).toEqual([
      expect.objectContaining({
        thumbs: "down",
        rewrite: { label: "B", content: "Paris is the capital." },
        flags: ["nonsense"],
        comment: "wrong city",
      }),
    ]);
  });
});

describe("JudgeForm: drafts and errors", () => {
  it("keeps unsent work across a reload and forgets it once submitted", async () => {
    const fetchMock = serve(makeAssignment(4, { interface: "thumbs", candidates: [THREE[0]!] }));
    const first = renderPage();
    await screen.findByRole("heading", { name: "Is this response good?" });
    fireEvent.click(screen.getByRole("radio", { name: "Bad response" }));
    fireEvent.click(screen.getByRole("button", { name: "Edit response A" }));
    fireEvent.change(screen.getByLabelText("Your improved response A"), { target: { value: "Better text" } });
    fireEvent.change(screen.getByLabelText("Comment (optional)"), { target: { value: "half a thought" } });
    first.unmount(); // the tab is reloaded

    renderPage();
    await screen.findByText("Your unsent work on this task was restored from this device.");
    expect(screen.getByRole("radio", { name: "Bad response" }).getAttribute("aria-checked")).toBe("true");
    expect((screen.getByLabelText("Your improved response A") as HTMLTextAreaElement).value).toBe("Better text");
    expect((screen.getByLabelText("Comment (optional)") as HTMLTextAreaElement).value).toBe("half a thought");

    fireEvent.click(submitButton());
    await screen.findByRole("heading", { name: "No more tasks to judge right now" });
    expect(localStorage.getItem("arbiter.draft.4")).toBeNull();
    expect(sentBodies(fetchMock, "POST", submitPath(4))).toEqual([
      expect.objectContaining({ thumbs: "down", rewrite: { label: "A", content: "Better text" } }),
    ]);
  });

  it("reuses the saved idempotency key after a reload, so a resend cannot store twice", async () => {
    let attempts = 0;
    const fetchMock = serve(makeAssignment(5), () => {
      attempts += 1;
      if (attempts === 1) throw new TypeError("Failed to fetch");
      return created("pairwise");
    });
    const first = renderPage();
    await screen.findByTestId("candidate-A");
    fireEvent.keyDown(document.body, { key: "3" });
    fireEvent.click(submitButton());
    await screen.findByRole("alert");
    first.unmount();

    renderPage();
    await screen.findByText("Your unsent work on this task was restored from this device.");
    fireEvent.click(submitButton());
    await screen.findByRole("heading", { name: "No more tasks to judge right now" });
    const keys = (sentBodies(fetchMock, "POST", submitPath(5)) as { idempotency_key: string }[]).map((b) => b.idempotency_key);
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
  });

  it("says in words that the server failed and that nothing typed is lost", async () => {
    serve(makeAssignment(6), { status: 500 });
    renderPage();
    await screen.findByTestId("candidate-A");
    fireEvent.click(screen.getByRole("radio", { name: "Tie" }));
    fireEvent.change(screen.getByLabelText("Comment (optional)"), { target: { value: "keep me" } });
    fireEvent.click(submitButton());
    expect((await screen.findByRole("alert")).textContent).toBe(
      "The server had a problem and did not save this (HTTP 500). Nothing you entered is lost: it is kept on this device. Try again in a moment.",
    );
    expect(JSON.parse(localStorage.getItem("arbiter.draft.6")!).draft).toMatchObject({ choice: 3, comment: "keep me" });
  });

  it("says in words when the queue cannot be loaded because the server failed", async () => {
    mockApi({ [`GET ${NEXT}`]: { status: 503, body: { detail: "Service unavailable." } } });
    renderPage();
    await screen.findByRole("heading", { name: "Could not load the next task" });
    expect(screen.getByRole("alert").textContent).toBe(
      "The server had a problem (HTTP 503): Service unavailable. This is not your fault; try again in a moment.",
    );
    expect(screen.getByRole("button", { name: "Try again" })).toBeTruthy();
  });
});

describe("JudgeForm: pairwise extras", () => {
  it("sends 'both bad' with no choice when the project allows it", async () => {
    const fetchMock = serve(makeAssignment(7));
    renderPage();
    await screen.findByTestId("candidate-A");
    fireEvent.keyDown(document.body, { key: "2" });
    fireEvent.click(screen.getByLabelText("Both responses are bad"));
    expect(screen.getAllByRole("radio").every((radio) => radio.getAttribute("aria-checked") === "false")).toBe(true);
    fireEvent.click(submitButton());
    await screen.findByRole("heading", { name: "No more tasks to judge right now" });
    expect(sentBodies(fetchMock, "POST", submitPath(7))).toEqual([
      expect.objectContaining({ choice: null, both_bad: true }),
    ]);
  });

  it("skips with a reason and shows the task the server hands back", async () => {
    const fetchMock = mockApi({
      [`GET ${NEXT}`]: { status: 200, body: { assignment: makeAssignment(8) } },
      "POST /api/v1/assignments/8/skip/": { status: 200, body: { assignment: makeAssignment(9) } },
    });
    renderPage();
    await screen.findByTestId("candidate-A");
    fireEvent.change(screen.getByLabelText("Comment (optional)"), { target: { value: "draft" } });
    fireEvent.click(screen.getByRole("button", { name: "Skip this task…" }));
    fireEvent.change(screen.getByLabelText("Why skip it?"), { target: { value: "Other" } });
    fireEvent.click(screen.getByRole("button", { name: "Skip and go to the next task" }));
    expect(screen.getByText("Say why you skip this task.")).toBeTruthy();
    fireEvent.change(screen.getByLabelText("Your reason"), { target: { value: "Needs a doctor" } });
    fireEvent.keyDown(screen.getByLabelText("Your reason"), { key: "Enter" });

    await waitFor(() => expect(screen.getByTestId("candidate-A").textContent).toContain("Answer A for 9"));
    expect(sentBodies(fetchMock, "POST", "/api/v1/assignments/8/skip/")).toEqual([{ reason: "Needs a doctor" }]);
    expect(localStorage.getItem("arbiter.draft.8")).toBeNull();
    expect(screen.getByText("Judged this session: 0")).toBeTruthy();
  });
});
