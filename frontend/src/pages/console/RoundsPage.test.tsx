import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ModelVersion, Round } from "../../api/types";
import { mockApi, sentBodies } from "../../test/api";
import { placeErrors, roundRequest } from "./RoundCreateForm";
import { POLL_MS, RoundsPage } from "./RoundsPage";

const ROUNDS = "/api/v1/projects/helpfulness/rounds/";
const VERSIONS = "/api/v1/model-versions/";

function makeRound(id: number, overrides: Partial<Round> = {}): Round {
  return {
    id,
    name: `Round ${id}`,
    status: "draft",
    model_version_ids: [1],
    candidates_per_prompt: 2,
    sampling_params: { temperature: 0.7 },
    generation_total: 0,
    generation_done: 0,
    generation_failed: 0,
    target_judgments: null,
    deadline: null,
    train_on_close: false,
    continue_automatically: false,
    pairing: "on_policy",
    previous: null,
    close_reason: "",
    tasks: 0,
    judgments: 0,
    created_at: "2030-01-01T00:00:00Z",
    ...overrides,
  };
}

function makeVersion(id: number, label: string, enabled = true): ModelVersion {
  return {
    id,
    endpoint: 1,
    endpoint_name: "local",
    model_name: `model-${id}`,
    kind: "base",
    label,
    notes: "",
    enabled,
    status: "ready",
    status_detail: "",
    created_at: "2030-01-01T00:00:00Z",
  };
}

const VERSION_LIST = [makeVersion(1, "base v1"), makeVersion(2, "dpo v2"), makeVersion(3, "retired", false)];

function renderPage() {
  render(<RoundsPage slug="helpfulness" onAuthProblem={vi.fn()} />);
}

const bar = (name: string) => screen.getByRole("progressbar", { name: `Generation of ${name}` });

afterEach(() => {
  vi.useRealTimers();
});

describe("RoundsPage", () => {
  it("lists rounds with a progress bar of done and failed out of total", async () => {
    mockApi({
      [`GET ${ROUNDS}`]: {
        status: 200,
        body: [
          makeRound(2, { status: "collecting", generation_total: 200, generation_done: 150, generation_failed: 10, tasks: 70, judgments: 12 }),
          makeRound(1, { status: "done", model_version_ids: [1, 2] }),
        ],
      },
      [`GET ${VERSIONS}`]: { status: 200, body: VERSION_LIST },
    });
    renderPage();

    const progress = await screen.findByRole("progressbar", { name: "Generation of Round 2" });
    expect(progress.getAttribute("aria-valuenow")).toBe("160");
    expect(progress.getAttribute("aria-valuemax")).toBe("200");
    expect(progress.getAttribute("aria-valuetext")).toBe("150 of 200 generated (75%), 10 failed");
    expect((progress.querySelector(".progress-done") as HTMLElement).style.width).toBe("75%");
    expect((progress.querySelector(".progress-failed") as HTMLElement).style.width).toBe("5%");
    const card = screen.getByRole("listitem", { name: /Round 2/ });
    expect(within(card).getByText("Collecting judgments")).toBeTruthy();
    expect(card.textContent).toContain("70 tasks · 12 judgments");
    expect(await screen.findByText(/versions base v1, dpo v2/)).toBeTruthy();
    expect(screen.queryByRole("button", { name: /^Start/ })).toBeNull();
  });

  it("starts a draft round and polls its progress every 2 s until it stops generating", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const generating = (done: number) =>
      makeRound(5, { status: "generating", generation_total: 100, generation_done: done });
    const fetchMock = mockApi({
      [`GET ${ROUNDS}`]: { status: 200, body: [makeRound(5)] },
      [`GET ${VERSIONS}`]: { status: 200, body: VERSION_LIST },
      [`POST ${ROUNDS}5/start/`]: { status: 202, body: generating(0) },
      [`GET ${ROUNDS}5/`]: [
        { status: 200, body: generating(40) },
        { status: 200, body: makeRound(5, { status: "collecting", generation_total: 100, generation_done: 100 }) },
      ],
    });
    renderPage();

    fireEvent.click(await screen.findByRole("button", { name: "Start Round 5" }));
    await screen.findByText("Generating candidates");
    expect(bar("Round 5").getAttribute("aria-valuetext")).toBe("0 of 100 generated (0%)");

    await act(() => vi.advanceTimersByTimeAsync(POLL_MS));
    expect(bar("Round 5").getAttribute("aria-valuetext")).toBe("40 of 100 generated (40%)");
    await act(() => vi.advanceTimersByTimeAsync(POLL_MS));
    expect(bar("Round 5").getAttribute("aria-valuetext")).toBe("100 of 100 generated (100%)");
    expect(screen.getByText("Collecting judgments")).toBeTruthy();

    await act(() => vi.advanceTimersByTimeAsync(POLL_MS * 3));
    const polls = fetchMock.mock.calls.filter(([url]) => url === `${ROUNDS}5/`);
    expect(polls).toHaveLength(2); // no more polling once generation is over
  });

  it("shows why a round could not start next to its Start button", async () => {
    mockApi({
      [`GET ${ROUNDS}`]: { status: 200, body: [makeRound(6)] },
      [`GET ${VERSIONS}`]: { status: 200, body: VERSION_LIST },
      [`POST ${ROUNDS}6/start/`]: { status: 400, body: { detail: "Invalid input: status. only a draft round can start" } },
    });
    renderPage();
    const start = await screen.findByRole("button", { name: "Start Round 6" });
    fireEvent.click(start);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toBe("Could not start: Invalid input: status. only a draft round can start");
    expect(start.getAttribute("aria-describedby")).toBe(alert.id);
  });

  it("creates a round from the form and lists it first", async () => {
    const fetchMock = mockApi({
      [`GET ${ROUNDS}`]: { status: 200, body: [makeRound(1)] },
      [`GET ${VERSIONS}`]: { status: 200, body: VERSION_LIST },
      [`POST ${ROUNDS}`]: { status: 201, body: makeRound(9, { name: "Fresh" }) },
    });
    renderPage();
    await screen.findByRole("heading", { name: "Round 1" });
    await screen.findByLabelText(/base v1/);
    expect(screen.queryByLabelText(/retired/)).toBeNull(); // disabled versions are not offered

    fireEvent.change(screen.getByLabelText("Name"), { target: { value: "Fresh" } });
    fireEvent.click(screen.getByLabelText(/base v1/));
    fireEvent.click(screen.getByLabelText(/dpo v2/));
    fireEvent.change(screen.getByLabelText(/^Prompts/), { target: { value: "50" } });
    fireEvent.change(screen.getByLabelText("Candidates per prompt"), { target: { value: "4" } });
    fireEvent.change(screen.getByLabelText("Temperature"), { target: { value: "0.8" } });
    fireEvent.change(screen.getByLabelText("Max tokens"), { target: { value: "256" } });
    fireEvent.click(screen.getByRole("button", { name: "Create round" }));

    await screen.findByText(/Round “Fresh” was created as a draft/);
    expect(sentBodies(fetchMock, "POST", ROUNDS)).toEqual([
      {
        name: "Fresh",
        model_version_ids: [1, 2],
        prompt_count: 50,
        candidates_per_prompt: 4,
        sampling_params: { temperature: 0.8, max_tokens: 256 },
      },
    ]);
    const names = screen.getAllByRole("heading", { level: 3 }).map((h) => h.textContent);
    expect(names).toEqual(["Fresh", "Round 1"]);
    expect((screen.getByLabelText("Name") as HTMLInputElement).value).toBe("");
  });

  it("shows each API error next to the field it names, sampling errors under their own field", async () => {
    mockApi({
      [`GET ${ROUNDS}`]: { status: 200, body: [] },
      [`GET ${VERSIONS}`]: { status: 200, body: VERSION_LIST },
      [`POST ${ROUNDS}`]: {
        status: 400,
        body: {
          detail: "Invalid input: name, model_version_ids, sampling_params, prompt_count.",
          errors: {
            name: ["This field may not be blank."],
            model_version_ids: ["Ensure this field has at least 1 elements."],
            sampling_params: ["top_p must be between 0.01 and 1"],
            prompt_count: ["give prompt_ids or prompt_count"],
          },
        },
      },
    });
    renderPage();
    await screen.findByText("No rounds yet. Create the first one below.");
    fireEvent.change(screen.getByLabelText("Top p"), { target: { value: "3" } });
    fireEvent.click(screen.getByRole("button", { name: "Create round" }));

    await screen.findByRole("alert");
    const errorOf = (control: HTMLElement) => document.getElementById(control.getAttribute("aria-describedby")!)?.textContent;
    expect(errorOf(screen.getByLabelText("Name"))).toBe("This field may not be blank.");
    expect(errorOf(screen.getByLabelText("Top p"))).toBe("top_p must be between 0.01 and 1");
    expect(errorOf(screen.getByLabelText(/^Prompts/))).toBe("give prompt_ids or prompt_count");
    expect(errorOf(screen.getByRole("group", { name: "Model versions" }))).toBe("Ensure this field has at least 1 elements.");
    expect(screen.getByLabelText("Temperature").getAttribute("aria-invalid")).toBeNull();
    expect(screen.getByRole("alert").textContent).toBe(
      "Invalid input: name, model_version_ids, sampling_params, prompt_count.",
    );
  });
});

describe("round form helpers", () => {
  it("leaves out empty optional fields", () => {
    expect(
      roundRequest({
        name: " r ",
        versionIds: [3],
        promptCount: "",
        candidatesPerPrompt: "2",
        temperature: "",
        top_p: "",
        max_tokens: "",
      }),
    ).toEqual({ name: "r", model_version_ids: [3], candidates_per_prompt: 2 });
  });

  it("keeps sampling messages that name no field under sampling", () => {
    expect(placeErrors({ sampling_params: ["unknown keys seed", "max_tokens must be an integer"] })).toEqual({
      sampling_params: ["unknown keys seed"],
      max_tokens: ["max_tokens must be an integer"],
    });
  });
});
