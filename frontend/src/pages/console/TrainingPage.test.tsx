import { act, fireEvent, render, screen, within } from "@testing-library/react";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { TrainingJob, TrainingJobSummary } from "../../api/types";
import { mockApi, sentBodies } from "../../test/api";
import { POLL_MS } from "./common";
import { accuracyCurve, curve, TrainingPage } from "./TrainingPage";

const JOBS = "/api/v1/training-jobs/";
const TRIGGERS = "/api/v1/projects/helpfulness/training-triggers/";

/** The page's routes: the project's triggers (none unless given) plus the test's own. */
const serve = (routes: Parameters<typeof mockApi>[0]) => mockApi({ [`GET ${TRIGGERS}`]: { status: 200, body: [] }, ...routes });

/** The text of the element a control's aria-describedby points at. */
const errorOf = (control: HTMLElement) => {
  const id = control.getAttribute("aria-describedby");
  return id ? document.getElementById(id)?.textContent : undefined;
};

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
    serve({
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
    const fetchMock = serve({
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
    serve({
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

  it("starts a job by hand with the typed kind and overrides, then shows it from the refreshed list", async () => {
    const queued = makeJob(9, {
      kind: "reward_model",
      status: "queued",
      round: null,
      progress_step: 0,
      progress_total: 0,
      metrics_history: [],
    });
    const fetchMock = serve({
      [`GET ${JOBS}`]: [{ status: 200, body: [summary(makeJob(8))] }, { status: 200, body: [summary(queued), summary(makeJob(8))] }],
      [`GET ${JOBS}8/`]: { status: 200, body: makeJob(8) },
      [`GET ${JOBS}9/`]: { status: 200, body: queued },
      [`POST ${JOBS}`]: { status: 201, body: queued },
    });
    render(<TrainingPage slug="helpfulness" onAuthProblem={vi.fn()} />);
    await screen.findByRole("listitem", { name: "DPO policy job 8" });
    const form = screen.getByRole("form", { name: "Start a training job" });
    fireEvent.change(within(form).getByLabelText("Kind"), { target: { value: "reward_model" } });
    fireEvent.change(within(form).getByLabelText(/^Recipe overrides/), { target: { value: '{"num_train_epochs": 2}' } });
    fireEvent.click(within(form).getByRole("button", { name: "Start job" }));

    expect((await within(form).findByRole("status")).textContent).toBe("Reward model job 9 is queued; it shows in the list.");
    expect(sentBodies(fetchMock, "POST", JOBS)).toEqual([{ project: "helpfulness", kind: "reward_model", config: { num_train_epochs: 2 } }]);
    const card = await screen.findByRole("listitem", { name: "Reward model job 9" });
    expect(within(card).getByText("Queued")).toBeTruthy();
    // The list was fetched again after the POST (the page's refresh), not only patched locally.
    const jobCalls = fetchMock.mock.calls.filter(([url]) => url === JOBS).map(([, init]) => init?.method ?? "GET");
    expect(jobCalls).toEqual(["GET", "POST", "GET"]);
    expect((within(form).getByLabelText(/^Recipe overrides/) as HTMLTextAreaElement).value).toBe("");
  });

  it("shows why a job could not start next to the field, nested recipe settings included", async () => {
    const fetchMock = serve({
      [`GET ${JOBS}`]: { status: 200, body: [] },
      [`POST ${JOBS}`]: {
        status: 400,
        body: {
          detail: "Invalid input: config.beta. Ensure this value is greater than 0.",
          errors: { "config.beta": ["Ensure this value is greater than 0."] },
        },
      },
    });
    render(<TrainingPage slug="helpfulness" onAuthProblem={vi.fn()} />);
    expect(await screen.findByText(/No training jobs yet/)).toBeTruthy();
    const form = screen.getByRole("form", { name: "Start a training job" });
    const overrides = within(form).getByLabelText(/^Recipe overrides/);

    fireEvent.change(overrides, { target: { value: "[0.1]" } });
    fireEvent.click(within(form).getByRole("button", { name: "Start job" }));
    expect(errorOf(overrides)).toBe('Enter a JSON object in braces, e.g. {"beta": 0.1}.');
    expect(sentBodies(fetchMock, "POST", JOBS)).toEqual([]);

    fireEvent.change(overrides, { target: { value: '{"beta": 0}' } });
    fireEvent.click(within(form).getByRole("button", { name: "Start job" }));
    expect((await within(form).findByRole("alert")).textContent).toBe("Invalid input: config.beta. Ensure this value is greater than 0.");
    expect(overrides.getAttribute("aria-invalid")).toBe("true");
    expect(errorOf(overrides)).toBe("beta: Ensure this value is greater than 0.");
    expect(within(form).getByLabelText("Kind").getAttribute("aria-invalid")).toBeNull();
    expect(sentBodies(fetchMock, "POST", JOBS)).toEqual([{ project: "helpfulness", kind: "dpo", config: { beta: 0 } }]);
  });

  it("fetches the jobs again after a trigger's run now, so the jobs it started show", async () => {
    const trigger = {
      id: 1,
      project: "helpfulness",
      name: "nightly",
      when: "schedule",
      cron: "0 3 * * *",
      cron_timezone: "UTC",
      kinds: ["dpo"],
      min_new_judgments: 1,
      config: {},
      enabled: true,
      last_checked_at: null,
      last_result: "",
      last_jobs: [],
      created_at: "2030-01-01T00:00:00Z",
    };
    const started = makeJob(11, { status: "queued", progress_step: 0, progress_total: 0, metrics_history: [] });
    serve({
      [`GET ${TRIGGERS}`]: { status: 200, body: [trigger] },
      [`POST /api/v1/training-triggers/1/run-now/`]: {
        status: 200,
        body: { ...trigger, last_checked_at: "2030-01-02T00:00:00Z", last_result: "started job 11", last_jobs: [11] },
      },
      [`GET ${JOBS}`]: [{ status: 200, body: [] }, { status: 200, body: [summary(started)] }],
      [`GET ${JOBS}11/`]: { status: 200, body: started },
    });
    render(<TrainingPage slug="helpfulness" onAuthProblem={vi.fn()} />);
    const card = await screen.findByRole("listitem", { name: "nightly" });
    await screen.findByText(/No training jobs yet/);
    fireEvent.click(within(card).getByRole("button", { name: "Run now: nightly" }));
    expect((await within(card).findByRole("status")).textContent).toBe("Run now: started job 11.");
    expect(await screen.findByRole("listitem", { name: "DPO policy job 11" })).toBeTruthy();
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
