import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { TrainingJob, TrainingJobSummary } from "../../api/types";
import { mockApi } from "../../test/api";
import { POLL_MS } from "./common";
import { accuracyCurve, curve, TrainingPage } from "./TrainingPage";

const JOBS = "/api/v1/training-jobs/";

function makeJob(id: number, overrides: Partial<TrainingJob> = {}): TrainingJob {
  return {
    id,
    kind: "dpo",
    project: "helpfulness",
    status: "succeeded",
    config: {},
    round: 2,
    export: null,
    data_snapshot_id: "abc",
    data_rows: 30,
    judgment_count: 30,
    judgment_max_id: 99,
    progress_step: 20,
    progress_total: 20,
    metrics: { eval_reward_accuracy: 0.75, train_runtime_s: 12 },
    metrics_history: [
      { step: 5, loss: 0.69, "rewards/accuracies": 0.5 },
      { step: 10, loss: 0.6, "rewards/accuracies": 0.6 },
      { step: 20, loss: 0.4, "rewards/accuracies": 0.9 },
    ],
    checkpoint_path: "/var/ckpt",
    registered_version: null,
    error: "",
    log_tail: "done",
    created_at: "2030-01-01T00:00:00Z",
    started_at: "2030-01-01T00:00:01Z",
    heartbeat_at: "2030-01-01T00:00:30Z",
    finished_at: null,
    ...overrides,
  };
}

const summary = (job: TrainingJob): TrainingJobSummary => {
  const { metrics_history: _history, log_tail: _log, ...rest } = job;
  return rest;
};

afterEach(() => {
  vi.useRealTimers();
});

describe("TrainingPage", () => {
  it("lists this project's jobs with progress, curves and the version a job registered", async () => {
    mockApi({
      [`GET ${JOBS}`]: {
        status: 200,
        body: [summary(makeJob(8, { registered_version: 5 })), summary(makeJob(7, { project: "other" }))],
      },
      [`GET ${JOBS}8/`]: { status: 200, body: makeJob(8, { registered_version: 5 }) },
      "GET /api/v1/model-versions/": { status: 200, body: [{ id: 5, label: "dpo round 2" }] },
    });
    render(<TrainingPage slug="helpfulness" onAuthProblem={vi.fn()} />);

    const card = await screen.findByRole("listitem", { name: "DPO policy job 8" });
    expect(screen.queryByText(/job 7/)).toBeNull(); // another project's
    const bar = within(card).getByRole("progressbar", { name: "Progress of DPO policy job 8" });
    expect(bar.getAttribute("aria-valuetext")).toBe("20 of 20 steps (100%)");
    expect(await within(card).findByText("dpo round 2")).toBeTruthy();
    const loss = await within(card).findByRole("img", { name: /Loss/ });
    expect(loss.querySelector("desc")?.textContent).toBe(
      "3 points from step 5 to 20: 0.690 at first, 0.400 at the end, lowest 0.400, highest 0.690.",
    );
    expect(loss.querySelector("path.chart-line")?.getAttribute("d")).toBeTruthy();
    expect(within(card).getByRole("img", { name: /Reward accuracy/ }).querySelector("desc")?.textContent).toContain(
      "50% at first, 90% at the end",
    );
    expect(within(card).getByText("0.7500")).toBeTruthy(); // eval reward accuracy in the final numbers
    expect(within(card).queryByRole("button", { name: /^Cancel/ })).toBeNull();
  });

  it("polls a running job, cancels it and stops polling once it is over", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const running = (step: number) =>
      makeJob(3, { kind: "reward_model", status: "running", progress_step: step, metrics_history: [{ step, loss: 1 / step, accuracy: 0.5 }] });
    const fetchMock = mockApi({
      [`GET ${JOBS}`]: [{ status: 200, body: [summary(running(2))] }, { status: 200, body: [summary(running(6))] }],
      [`GET ${JOBS}3/`]: [{ status: 200, body: running(2) }, { status: 200, body: running(6) }],
      [`POST ${JOBS}3/cancel/`]: { status: 200, body: makeJob(3, { kind: "reward_model", status: "cancelled", progress_step: 6 }) },
    });
    render(<TrainingPage slug="helpfulness" onAuthProblem={vi.fn()} />);
    const bar = await screen.findByRole("progressbar", { name: "Progress of Reward model job 3" });
    expect(bar.getAttribute("aria-valuetext")).toBe("2 of 20 steps (10%)");

    await act(() => vi.advanceTimersByTimeAsync(POLL_MS));
    expect(bar.getAttribute("aria-valuetext")).toBe("6 of 20 steps (30%)");
    expect(fetchMock.mock.calls.filter(([url]) => url === `${JOBS}3/`).length).toBe(2); // curves follow the job

    fireEvent.click(screen.getByRole("button", { name: "Cancel Reward model job 3" }));
    expect(await screen.findByText("Cancelled")).toBeTruthy();
    const listCalls = () => fetchMock.mock.calls.filter(([url]) => url === JOBS).length;
    const before = listCalls();
    await act(() => vi.advanceTimersByTimeAsync(POLL_MS * 3));
    expect(listCalls()).toBe(before);
    expect(screen.queryByRole("button", { name: /^Cancel/ })).toBeNull();
  });

  it("says why a job could not be cancelled next to the button", async () => {
    mockApi({
      [`GET ${JOBS}`]: { status: 200, body: [summary(makeJob(4, { status: "queued", progress_step: 0, progress_total: 0 }))] },
      [`GET ${JOBS}4/`]: { status: 200, body: makeJob(4, { status: "queued", metrics_history: [] }) },
      [`POST ${JOBS}4/cancel/`]: { status: 409, body: { detail: "training job 4 is already succeeded" } },
    });
    render(<TrainingPage slug="helpfulness" onAuthProblem={vi.fn()} />);
    const cancel = await screen.findByRole("button", { name: "Cancel DPO policy job 4" });
    expect(await screen.findByText("No steps logged yet.")).toBeTruthy();
    fireEvent.click(cancel);
    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toBe("Could not cancel: training job 4 is already succeeded");
    expect(cancel.getAttribute("aria-describedby")).toBe(alert.id);
  });
});

describe("curves from metrics history", () => {
  it("keeps finite numbers of one key and picks whichever accuracy the recipe logged", () => {
    const history = [{ step: 1, loss: 0.5 }, { step: 2, loss: null }, { step: 3, loss: 0.25, accuracy: 0.6 }, "junk"];
    expect(curve(history, "loss")).toEqual([
      { step: 1, value: 0.5 },
      { step: 3, value: 0.25 },
    ]);
    expect(accuracyCurve(history)).toEqual({ key: "accuracy", points: [{ step: 3, value: 0.6 }] });
    expect(accuracyCurve([{ step: 1, loss: 1 }])).toBeNull();
    expect(curve(null, "loss")).toEqual([]);
  });
});
