import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { TrainingTrigger } from "../../api/types";
import { mockApi, sentBodies } from "../../test/api";
import { triggerChange, triggerRequest, triggerValues, NEW_TRIGGER, TrainingTriggers } from "./TrainingTriggers";

const LIST = "/api/v1/projects/helpfulness/training-triggers/";
const ONE = (id: number) => `/api/v1/training-triggers/${id}/`;
const RUN = (id: number) => `/api/v1/training-triggers/${id}/run-now/`;

function makeTrigger(id: number, overrides: Partial<TrainingTrigger> = {}): TrainingTrigger {
  return {
    id,
    project: "helpfulness",
    name: "nightly",
    when: "schedule",
    cron: "0 3 * * *",
    cron_timezone: "Europe/Berlin",
    kinds: ["reward_model", "dpo"],
    min_new_judgments: 50,
    config: {},
    enabled: true,
    last_checked_at: null,
    last_result: "",
    last_jobs: [],
    created_at: "2030-01-01T00:00:00Z",
    ...overrides,
  };
}

/** The text of the element a control's aria-describedby points at. */
const errorOf = (control: HTMLElement) => {
  const id = control.getAttribute("aria-describedby");
  return id ? document.getElementById(id)?.textContent : undefined;
};

function renderPanel(onChecked = vi.fn(), onAuthProblem = vi.fn()) {
  render(<TrainingTriggers slug="helpfulness" onAuthProblem={onAuthProblem} onChecked={onChecked} />);
  return { onChecked, onAuthProblem };
}

const newForm = () => screen.getByRole("form", { name: "New trigger" });

describe("TrainingTriggers", () => {
  it("lists the project's triggers: when, kinds, threshold, enabled and the last check", async () => {
    mockApi({
      [`GET ${LIST}`]: {
        status: 200,
        body: [
          makeTrigger(1, {
            config: { dpo: { beta: 0.2 } },
            last_checked_at: "2030-01-02T03:00:00Z",
            last_result: "started jobs 12,13",
            last_jobs: [12, 13],
          }),
          makeTrigger(2, { name: "", when: "round_closed", kinds: ["dpo"], min_new_judgments: 1, enabled: false }),
        ],
      },
    });
    renderPanel();

    const nightly = await screen.findByRole("listitem", { name: "nightly" });
    expect(within(nightly).getByText("Enabled")).toBeTruthy();
    expect(within(nightly).getByText("0 3 * * *").closest("dd")?.textContent).toBe("Cron 0 3 * * * in Europe/Berlin");
    expect(within(nightly).getByText("Reward model and DPO policy")).toBeTruthy();
    expect(within(nightly).getByText("50 new judgments since a kind's last job")).toBeTruthy();
    expect(within(nightly).getByText('{"beta":0.2}')).toBeTruthy();
    expect(within(nightly).getByText(/: started jobs 12,13$/)).toBeTruthy();
    expect(within(nightly).getByText("#12, #13")).toBeTruthy();

    const unnamed = screen.getByRole("listitem", { name: "Trigger 2" });
    expect(within(unnamed).getByText("Disabled")).toBeTruthy();
    expect(within(unnamed).getByText("When a round of the project closes")).toBeTruthy();
    expect(within(unnamed).getByText("DPO policy")).toBeTruthy();
    expect(within(unnamed).getByText("1 new judgment since a kind's last job")).toBeTruthy();
    expect(within(unnamed).getByText("Not checked yet")).toBeTruthy();
    expect(within(unnamed).getByRole("button", { name: "Enable Trigger 2" })).toBeTruthy();
  });

  it("creates a schedule trigger with what was typed and lists it", async () => {
    const created = makeTrigger(5, {
      name: "weekly",
      cron: "30 2 * * 1",
      cron_timezone: "UTC",
      kinds: ["dpo"],
      min_new_judgments: 200,
      config: { dpo: { beta: 0.1 } },
    });
    const fetchMock = mockApi({
      [`GET ${LIST}`]: { status: 200, body: [] },
      [`POST ${LIST}`]: { status: 201, body: created },
    });
    renderPanel();
    expect(await screen.findByText(/No triggers yet/)).toBeTruthy();
    const form = newForm();
    expect(within(form).getByText(/minute hour day month weekday, e\.g\. 0 3 \* \* \* \(nightly\)/)).toBeTruthy();
    fireEvent.change(within(form).getByLabelText(/^Name/), { target: { value: " weekly " } });
    fireEvent.change(within(form).getByLabelText(/^Cron/), { target: { value: "30  2 * * 1" } });
    fireEvent.click(within(form).getByRole("checkbox", { name: "Reward model" }));
    fireEvent.change(within(form).getByLabelText(/^Minimum new judgments/), { target: { value: "200" } });
    fireEvent.change(within(form).getByLabelText(/^DPO policy overrides/), { target: { value: '{"beta": 0.1}' } });
    fireEvent.click(within(form).getByRole("button", { name: "Create trigger" }));

    expect((await within(form).findByRole("status")).textContent).toBe("Trigger “weekly” was created.");
    const posts = fetchMock.mock.calls.filter(([, init]) => init?.method === "POST");
    expect(posts.map(([url]) => url)).toEqual([LIST]);
    expect(sentBodies(fetchMock, "POST", LIST)).toEqual([
      {
        name: "weekly",
        when: "schedule",
        cron: "30 2 * * 1",
        cron_timezone: "UTC",
        kinds: ["dpo"],
        min_new_judgments: 200,
        enabled: true,
        config: { dpo: { beta: 0.1 } },
      },
    ]);
    expect(screen.getByRole("listitem", { name: "weekly" })).toBeTruthy();
    expect((within(form).getByLabelText(/^Name/) as HTMLInputElement).value).toBe(""); // ready for the next one
  });

  it("hides the cron for a trigger that runs when a round closes and does not send it", async () => {
    const fetchMock = mockApi({
      [`GET ${LIST}`]: { status: 200, body: [] },
      [`POST ${LIST}`]: { status: 201, body: makeTrigger(6, { name: "", when: "round_closed", enabled: false }) },
    });
    renderPanel();
    await screen.findByText(/No triggers yet/);
    const form = newForm();
    fireEvent.click(within(form).getByRole("radio", { name: "When a round of the project closes" }));
    expect(within(form).queryByLabelText(/^Cron/)).toBeNull();
    expect(within(form).queryByLabelText(/^Time zone/)).toBeNull();
    fireEvent.click(within(form).getByRole("checkbox", { name: "Enabled" }));
    fireEvent.click(within(form).getByRole("button", { name: "Create trigger" }));

    expect((await within(form).findByRole("status")).textContent).toBe("Trigger “Trigger 6” was created (disabled).");
    expect(sentBodies(fetchMock, "POST", LIST)).toEqual([
      { name: "", when: "round_closed", kinds: ["reward_model", "dpo"], min_new_judgments: 1, enabled: false },
    ]);
  });

  it("shows the server's errors next to the field they name, nested recipe settings included", async () => {
    const fetchMock = mockApi({
      [`GET ${LIST}`]: { status: 200, body: [] },
      [`POST ${LIST}`]: {
        status: 400,
        body: {
          detail: "Invalid input: cron, config.dpo.beta.",
          errors: {
            cron: ["hour: Invalid hour '25'."],
            "config.dpo.beta": ["Ensure this value is greater than 0."],
            config: { reward_model: { margin: ['"big" is not a valid choice.'] } },
          },
        },
      },
    });
    renderPanel();
    await screen.findByText(/No triggers yet/);
    const form = newForm();
    const dpo = within(form).getByLabelText(/^DPO policy overrides/);

    // Not JSON: said here, nothing sent.
    fireEvent.change(dpo, { target: { value: "{beta: 0}" } });
    fireEvent.click(within(form).getByRole("button", { name: "Create trigger" }));
    expect(errorOf(dpo)).toBe('Enter a JSON object, e.g. {"beta": 0.1}.');
    expect(within(form).getByRole("alert").textContent).toBe("Some settings need fixing first; see the messages next to them.");
    expect(fetchMock.mock.calls.filter(([, init]) => init?.method === "POST")).toEqual([]);

    fireEvent.change(dpo, { target: { value: '{"beta": 0}' } });
    fireEvent.change(within(form).getByLabelText(/^Cron/), { target: { value: "0 25 * * *" } });
    fireEvent.click(within(form).getByRole("button", { name: "Create trigger" }));

    const alert = await within(form).findByRole("alert");
    expect(alert.textContent).toBe("Invalid input: cron, config.dpo.beta.");
    const cron = within(form).getByLabelText(/^Cron/);
    expect(cron.getAttribute("aria-invalid")).toBe("true");
    expect(errorOf(cron)).toBe("hour: Invalid hour '25'.");
    expect(errorOf(dpo)).toBe("beta: Ensure this value is greater than 0.");
    expect(errorOf(within(form).getByLabelText(/^Reward model overrides/))).toBe('margin: "big" is not a valid choice.');
    expect(within(form).getByLabelText(/^Time zone/).getAttribute("aria-invalid")).toBeNull();
    expect(sentBodies(fetchMock, "POST", LIST)).toHaveLength(1);
  });

  it("toggles enabled and saves an edit with only what changed", async () => {
    const fetchMock = mockApi({
      [`GET ${LIST}`]: { status: 200, body: [makeTrigger(1)] },
      [`PATCH ${ONE(1)}`]: [
        { status: 200, body: makeTrigger(1, { enabled: false }) },
        { status: 200, body: makeTrigger(1, { enabled: false, cron: "30 2 * * 1", min_new_judgments: 100 }) },
      ],
    });
    renderPanel();
    const card = await screen.findByRole("listitem", { name: "nightly" });
    fireEvent.click(within(card).getByRole("button", { name: "Disable nightly" }));
    expect(await within(card).findByText("Disabled")).toBeTruthy();
    expect(within(card).getByRole("status").textContent).toMatch(/^Disabled/);

    const edit = within(card).getByRole("button", { name: "Edit nightly" });
    fireEvent.click(edit);
    expect(edit.getAttribute("aria-expanded")).toBe("true");
    const form = within(card).getByRole("form", { name: "Edit nightly" });
    expect((within(form).getByLabelText(/^Cron/) as HTMLInputElement).value).toBe("0 3 * * *");
    expect((within(form).getByLabelText(/^Time zone/) as HTMLInputElement).value).toBe("Europe/Berlin");
    fireEvent.change(within(form).getByLabelText(/^Cron/), { target: { value: "30 2 * * 1" } });
    fireEvent.change(within(form).getByLabelText(/^Minimum new judgments/), { target: { value: "100" } });
    fireEvent.click(within(form).getByRole("button", { name: "Save changes" }));

    expect(await within(card).findByText("Changes saved.")).toBeTruthy();
    expect(within(card).queryByRole("form")).toBeNull();
    expect(within(card).getByText("30 2 * * 1")).toBeTruthy();
    expect(within(card).getByText("100 new judgments since a kind's last job")).toBeTruthy();
    expect(sentBodies(fetchMock, "PATCH", ONE(1))).toEqual([{ enabled: false }, { cron: "30 2 * * 1", min_new_judgments: 100 }]);
  });

  it("runs a trigger now and shows what the check answered", async () => {
    const fetchMock = mockApi({
      [`GET ${LIST}`]: { status: 200, body: [makeTrigger(1), makeTrigger(2, { name: "weekly" })] },
      [`POST ${RUN(1)}`]: {
        status: 200,
        body: makeTrigger(1, { last_checked_at: "2030-01-02T03:00:00Z", last_result: "started jobs 21,22", last_jobs: [21, 22] }),
      },
      [`POST ${RUN(2)}`]: {
        status: 200,
        body: makeTrigger(2, {
          name: "weekly",
          last_checked_at: "2030-01-02T03:00:00Z",
          last_result: "skipped reward_model: 3 new judgments since job 4, needs 50; skipped dpo: dpo job 9 is still running",
        }),
      },
    });
    const { onChecked } = renderPanel();
    const nightly = await screen.findByRole("listitem", { name: "nightly" });
    fireEvent.click(within(nightly).getByRole("button", { name: "Run now: nightly" }));
    expect((await within(nightly).findByRole("status")).textContent).toBe("Run now: started jobs 21,22.");
    expect(within(nightly).getByText("#21, #22")).toBeTruthy();
    expect(onChecked).toHaveBeenCalledTimes(1);

    const weekly = screen.getByRole("listitem", { name: "weekly" });
    fireEvent.click(within(weekly).getByRole("button", { name: "Run now: weekly" }));
    expect((await within(weekly).findByRole("status")).textContent).toBe(
      "Run now: skipped reward_model: 3 new judgments since job 4, needs 50; skipped dpo: dpo job 9 is still running.",
    );
    expect(within(weekly).queryByText(/^#/)).toBeNull();
    const runs = fetchMock.mock.calls.filter(([url]) => String(url).endsWith("/run-now/"));
    expect(runs.map(([url, init]) => [url, init?.method, init?.body])).toEqual([
      [RUN(1), "POST", undefined],
      [RUN(2), "POST", undefined],
    ]);
  });

  it("deletes a trigger only once that is confirmed", async () => {
    const fetchMock = mockApi({
      [`GET ${LIST}`]: { status: 200, body: [makeTrigger(1), makeTrigger(2, { name: "weekly" })] },
      [`DELETE ${ONE(1)}`]: { status: 204 },
    });
    renderPanel();
    const card = await screen.findByRole("listitem", { name: "nightly" });
    const deleteButton = within(card).getByRole("button", { name: "Delete nightly" });
    const deletes = () => fetchMock.mock.calls.filter(([, init]) => init?.method === "DELETE");

    fireEvent.click(deleteButton);
    const confirm = within(card).getByRole("group", { name: "Delete “nightly”? Its schedule stops; the jobs it started stay." });
    expect(document.activeElement).toBe(within(confirm).getByRole("button", { name: "Keep it" }));
    fireEvent.click(within(confirm).getByRole("button", { name: "Keep it" }));
    expect(within(card).queryByRole("group")).toBeNull();
    expect(document.activeElement).toBe(deleteButton);
    expect(deletes()).toEqual([]);

    fireEvent.click(deleteButton);
    fireEvent.keyDown(within(card).getByRole("button", { name: "Keep it" }), { key: "Escape" });
    expect(within(card).queryByRole("group")).toBeNull();
    expect(deletes()).toEqual([]);

    fireEvent.click(deleteButton);
    fireEvent.click(within(card).getByRole("button", { name: "Yes, delete it" }));
    await screen.findByRole("listitem", { name: "weekly" });
    await vi.waitFor(() => expect(screen.queryByRole("listitem", { name: "nightly" })).toBeNull());
    expect(screen.getByRole("status").textContent).toBe("Trigger “nightly” was deleted.");
    expect(document.activeElement).toBe(screen.getByRole("heading", { name: "Schedule" }));
    expect(deletes().map(([url]) => url)).toEqual([ONE(1)]);
  });

  it("says next to the button why an action failed, and reports a lost session", async () => {
    mockApi({
      [`GET ${LIST}`]: { status: 200, body: [makeTrigger(1)] },
      [`POST ${RUN(1)}`]: [
        { status: 404, body: { detail: "No such training trigger." } },
        { status: 403, body: { detail: "Authentication credentials were not provided." } },
      ],
    });
    const { onAuthProblem } = renderPanel();
    const card = await screen.findByRole("listitem", { name: "nightly" });
    const run = within(card).getByRole("button", { name: "Run now: nightly" });
    fireEvent.click(run);
    const alert = await within(card).findByRole("alert");
    expect(alert.textContent).toBe("Could not run it now: No such training trigger.");
    expect(run.getAttribute("aria-describedby")).toBe(alert.id);
    expect(onAuthProblem).not.toHaveBeenCalled();

    fireEvent.click(run);
    expect(await within(card).findByText("Could not run it now: Authentication credentials were not provided.")).toBeTruthy();
    expect(onAuthProblem).toHaveBeenCalledTimes(1);
  });
});

describe("trigger requests", () => {
  it("changes only what differs from the loaded trigger; cleared overrides send an empty config", () => {
    const trigger = makeTrigger(1, { config: { dpo: { beta: 0.2 } } });
    const values = triggerValues(trigger);
    expect(triggerChange(values, trigger).change).toEqual({});
    expect(triggerChange({ ...values, config: { ...values.config, dpo: "" } }, trigger).change).toEqual({ config: {} });
    expect(triggerChange({ ...values, when: "round_closed" }, trigger).change).toEqual({ when: "round_closed" });
    expect(triggerRequest({ ...NEW_TRIGGER, kinds: [], min_new_judgments: "1.5" }).errors).toEqual({
      kinds: ["Tick at least one kind of job."],
      min_new_judgments: ["Enter a whole number."],
    });
  });
});
