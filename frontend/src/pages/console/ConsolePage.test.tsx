import { fireEvent, render, screen, waitFor, within } from "@testing-library/react";
import { beforeAll, describe, expect, it } from "vitest";
import { App } from "../../App";
import { makeAssignment, mockApi } from "../../test/api";
import { makeSettings } from "../../test/console";

const RESEARCHER = { id: 4, username: "rita", role: "researcher" };
const PROJECTS = [
  { slug: "labelled", name: "Only labelling", role: "annotator" },
  { slug: "helpfulness", name: "Helpfulness", role: "researcher" },
  { slug: "safety", name: "Safety", role: "admin" },
];

function serveConsole() {
  return mockApi({
    "GET /api/v1/auth/me/": { status: 200, body: RESEARCHER },
    "GET /api/v1/projects/": { status: 200, body: PROJECTS },
    "GET /api/v1/assignments/next/": { status: 200, body: { assignment: makeAssignment(1) } },
    "GET /api/v1/model-versions/": { status: 200, body: [] },
    "GET /api/v1/projects/helpfulness/rounds/": { status: 200, body: [] },
    "GET /api/v1/projects/safety/rounds/": { status: 200, body: [] },
    "GET /api/v1/projects/safety/quality/": {
      status: 200,
      body: {
        project: {
          n_judgments: 0, n_gold: 0, n_reask_pairs: 0, n_shared_tasks: 0, judgments_per_hour: null,
          gold_accuracy: null, self_consistency: null, position_a_rate: null, longer_wins_rate: null,
          tie_rate: null, mean_time_ms: null, krippendorff_alpha: null, fleiss_kappa: null, cohen_kappa: null,
        },
        annotators: [],
      },
    },
  });
}

// The console is lazy-loaded; transform it up front so a cold, busy machine does not time out the first find.
beforeAll(async () => {
  await import("./ConsolePage");
}, 30_000);

describe("console navigation", () => {
  it("takes a researcher from the header to the first project they research, then between pages", async () => {
    serveConsole();
    render(<App />);
    fireEvent.click(await screen.findByRole("link", { name: "Rounds" }));

    await screen.findByRole("heading", { name: "Helpfulness: rounds", level: 1 });
    expect(window.location.pathname).toBe("/projects/helpfulness/rounds");
    const picker = screen.getByLabelText("Project") as HTMLSelectElement;
    expect([...picker.options].map((o) => o.value)).toEqual(["helpfulness", "safety"]); // annotator-only projects left out

    fireEvent.change(picker, { target: { value: "safety" } });
    await screen.findByRole("heading", { name: "Safety: rounds", level: 1 });
    const quality = screen.getByRole("link", { name: "Quality" });
    expect(quality.getAttribute("href")).toBe("/projects/safety/quality"); // stays in the project
    fireEvent.click(quality);
    await screen.findByText("No judgments yet, so there is nothing to plot.");
    expect(window.location.pathname).toBe("/projects/safety/quality");
    expect(screen.getByRole("link", { name: "Quality", current: "page" })).toBeTruthy();
  });

  it("groups the project's own pages under Project and offers member invites only where the user is admin", async () => {
    mockApi({
      "GET /api/v1/auth/me/": { status: 200, body: RESEARCHER },
      "GET /api/v1/projects/": { status: 200, body: PROJECTS },
      "GET /api/v1/assignments/next/": { status: 200, body: { assignment: makeAssignment(1) } },
      "GET /api/v1/projects/helpfulness/": { status: 200, body: makeSettings() },
      "GET /api/v1/projects/helpfulness/members/": { status: 200, body: [{ username: "rita", role: "researcher" }] },
      "GET /api/v1/projects/safety/members/": { status: 200, body: [{ username: "rita", role: "admin" }] },
      ...Object.fromEntries(
        ["pairwise", "ranking", "rating", "thumbs"].map((kind) => [
          `GET /api/v1/projects/helpfulness/tasks/?interface=${kind}&limit=1`,
          { status: 200, body: { count: 0, results: [] } },
        ]),
      ),
    });
    render(<App />);
    fireEvent.click(await screen.findByRole("link", { name: "Project" }));
    await screen.findByRole("heading", { name: "Helpfulness: settings", level: 1 });
    expect(window.location.pathname).toBe("/projects/helpfulness/settings");
    const sections = screen.getByRole("navigation", { name: "Project sections" });
    expect(within(sections).getByRole("link", { name: "Settings", current: "page" })).toBeTruthy();
    expect(screen.getByRole("link", { name: "Project", current: "page" })).toBeTruthy();

    fireEvent.click(within(sections).getByRole("link", { name: "Members" }));
    await screen.findByRole("heading", { name: "Helpfulness: members", level: 1 });
    await screen.findByText(/Only the project's admins add members/);
    expect(screen.queryByRole("button", { name: "Add member" })).toBeNull();

    fireEvent.change(screen.getByLabelText("Project"), { target: { value: "safety" } });
    await screen.findByRole("heading", { name: "Safety: members", level: 1 });
    expect(await screen.findByRole("button", { name: "Add member" })).toBeTruthy();
  });

  it("shows no console links to an annotator, and no console at its address", async () => {
    mockApi({
      "GET /api/v1/auth/me/": { status: 200, body: { id: 3, username: "ann", role: "annotator" } },
      "GET /api/v1/assignments/next/": { status: 200, body: { assignment: null } },
    });
    render(<App />);
    await screen.findByRole("heading", { name: "No more tasks to judge right now" });
    expect(screen.queryByRole("link", { name: "Rounds" })).toBeNull();

    window.history.pushState(null, "", "/projects/helpfulness/rounds");
    window.dispatchEvent(new PopStateEvent("popstate"));
    await waitFor(() => expect(screen.getByRole("heading", { name: "Page not found" })).toBeTruthy());
  });

  it("says so when the project in the address is not one the user researches", async () => {
    serveConsole();
    window.history.replaceState(null, "", "/projects/labelled/quality");
    render(<App />);
    await screen.findByText("You are not a researcher in a project called “labelled”.");
    expect(screen.getByRole("link", { name: "Go to Helpfulness" }).getAttribute("href")).toBe(
      "/projects/helpfulness/quality",
    );
  });
});
