import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ExportSnapshot } from "../../api/types";
import { mockApi, sentBodies } from "../../test/api";
import { POLL_MS } from "./common";
import { ExportsPage } from "./ExportsPage";

const PROJECT = "/api/v1/projects/helpfulness";
const EXPORTS = `${PROJECT}/exports/`;

function makeExport(id: number, overrides: Partial<ExportSnapshot> = {}): ExportSnapshot {
  return {
    id,
    format: "trl-preference",
    file_format: "jsonl",
    options: {},
    status: "succeeded",
    judgments_total: 40,
    judgments_done: 40,
    row_count: 38,
    content_sha256: "0123456789abcdef0123",
    file_name: `helpfulness-${id}-trl-preference.jsonl`,
    card: "# Dataset card",
    validation: null,
    error: "",
    created_at: "2030-01-01T00:00:00Z",
    finished_at: "2030-01-01T00:01:00Z",
    ...overrides,
  };
}

const QUALITY_EMPTY = {
  project: {
    n_judgments: 0, n_gold: 0, n_reask_pairs: 0, n_shared_tasks: 0, judgments_per_hour: null, gold_accuracy: null,
    self_consistency: null, position_a_rate: null, longer_wins_rate: null, tie_rate: null, mean_time_ms: null,
    krippendorff_alpha: null, fleiss_kappa: null, cohen_kappa: null,
  },
  annotators: [{ annotator_id: 7, annotator: "ann" }],
};

const formChoices = {
  [`GET ${PROJECT}/rounds/`]: { status: 200, body: [{ id: 3, name: "Week 1" }] },
  "GET /api/v1/model-versions/": { status: 200, body: [{ id: 1, label: "base v1" }] },
  [`GET ${PROJECT}/guidelines/`]: { status: 200, body: [{ version: 2 }, { version: 1 }] },
  [`GET ${PROJECT}/quality/`]: { status: 200, body: QUALITY_EMPTY },
};

afterEach(() => {
  vi.useRealTimers();
});

describe("ExportsPage", () => {
  it("lets a researcher read and download exports but not create one", async () => {
    mockApi({ [`GET ${EXPORTS}`]: { status: 200, body: [makeExport(4)] } });
    render(<ExportsPage slug="helpfulness" role="researcher" onAuthProblem={vi.fn()} />);
    const link = await screen.findByRole("link", { name: "Download helpfulness-4-trl-preference.jsonl" });
    expect(link.getAttribute("href")).toBe(`${EXPORTS}4/download/`);
    expect(screen.getByText(/38 rows/)).toBeTruthy();
    expect(screen.queryByRole("button", { name: "Create export" })).toBeNull();
    expect(screen.getByText(/Only the project's admins create exports/)).toBeTruthy();
  });

  it("creates an export with filters and watches its progress until it can be downloaded", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const fetchMock = mockApi({
      [`GET ${EXPORTS}`]: { status: 200, body: [] },
      ...formChoices,
      [`POST ${EXPORTS}`]: { status: 202, body: makeExport(9, { status: "queued", judgments_done: 0, row_count: null, file_name: "" }) },
      [`GET ${EXPORTS}9/`]: [
        { status: 200, body: makeExport(9, { status: "running", judgments_done: 10, row_count: null, file_name: "" }) },
        { status: 200, body: makeExport(9) },
      ],
    });
    render(<ExportsPage slug="helpfulness" role="admin" onAuthProblem={vi.fn()} />);
    await screen.findByText("No exports yet.");
    fireEvent.change(screen.getByLabelText("Format"), { target: { value: "raw" } });
    fireEvent.change(screen.getByLabelText("Ties"), { target: { value: "keep" } });
    fireEvent.click(await screen.findByLabelText("Week 1"));
    fireEvent.click(screen.getByLabelText("Version 2"));
    fireEvent.click(screen.getByLabelText("ann"));
    fireEvent.click(screen.getByRole("button", { name: "Create export" }));

    const bar = await screen.findByRole("progressbar", { name: "Progress of Export 9" });
    expect(bar.getAttribute("aria-valuetext")).toBe("0 of 40 judgments read (0%)");
    expect(sentBodies(fetchMock, "POST", EXPORTS)).toEqual([
      {
        format: "raw",
        file_format: "jsonl",
        rules: { ties: "keep", both_bad: "drop", min_strength: 1, aggregate: "all", final_turn_only: false, seed: 0 },
        filters: { rounds: [3], model_versions: [], guideline_versions: [2], annotators: [7], since: null, until: null },
      },
    ]);

    await act(() => vi.advanceTimersByTimeAsync(POLL_MS));
    expect(bar.getAttribute("aria-valuetext")).toBe("10 of 40 judgments read (25%)");
    await act(() => vi.advanceTimersByTimeAsync(POLL_MS));
    const card = screen.getByRole("listitem", { name: /Export 9/ });
    expect(within(card).getByText("Ready")).toBeTruthy();
    expect(within(card).getByRole("link", { name: /^Download/ })).toBeTruthy();
    expect(screen.queryByRole("progressbar")).toBeNull();
    await act(() => vi.advanceTimersByTimeAsync(POLL_MS * 3));
    expect(fetchMock.mock.calls.filter(([url]) => url === `${EXPORTS}9/`)).toHaveLength(2);
  });

  it("shows nested rule and filter errors next to their fields", async () => {
    mockApi({
      [`GET ${EXPORTS}`]: { status: 200, body: [] },
      ...formChoices,
      [`POST ${EXPORTS}`]: {
        status: 400,
        body: {
          detail: "Invalid input: rules, filters.",
          errors: {
            rules: [{ min_strength: ["Ensure this value is less than or equal to 10."] }],
            filters: [{ rounds: { "0": ["Ensure this value is greater than or equal to 1."] } }],
          },
        },
      },
    });
    render(<ExportsPage slug="helpfulness" role="admin" onAuthProblem={vi.fn()} />);
    await screen.findByText("No exports yet.");
    fireEvent.change(screen.getByLabelText("Weakest preference kept"), { target: { value: "11" } });
    fireEvent.click(screen.getByRole("button", { name: "Create export" }));

    expect((await screen.findByRole("alert")).textContent).toBe("Invalid input: rules, filters.");
    const errorOf = (control: HTMLElement) => document.getElementById(control.getAttribute("aria-describedby")!)?.textContent;
    expect(errorOf(screen.getByLabelText("Weakest preference kept"))).toBe("Ensure this value is less than or equal to 10.");
    expect(errorOf(screen.getByRole("group", { name: "Rounds" }))).toBe("Ensure this value is greater than or equal to 1.");
    expect(screen.getByLabelText("Seed").getAttribute("aria-invalid")).toBeNull();
  });
});
