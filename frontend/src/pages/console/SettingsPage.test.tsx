import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { mockApi, sentBodies } from "../../test/api";
import { makeSettings } from "../../test/console";
import { placeSettingsErrors, SettingsPage } from "./SettingsPage";

const PROJECT = "/api/v1/projects/helpfulness/";
const TASKS = (kind: string) => `${PROJECT}tasks/?interface=${kind}&limit=1`;

function serve(routes: Parameters<typeof mockApi>[0] = {}) {
  return mockApi({
    [`GET ${PROJECT}`]: { status: 200, body: makeSettings() },
    [`GET ${TASKS("pairwise")}`]: { status: 200, body: { count: 12, results: [] } },
    [`GET ${TASKS("ranking")}`]: { status: 200, body: { count: 0, results: [] } },
    [`GET ${TASKS("rating")}`]: { status: 200, body: { count: 3, results: [] } },
    [`GET ${TASKS("thumbs")}`]: { status: 200, body: { count: 1, results: [] } },
    ...routes,
  });
}

/** The text of the element a control's aria-describedby points at. */
const errorOf = (control: HTMLElement) => {
  const id = control.getAttribute("aria-describedby");
  return id ? document.getElementById(id)?.textContent : undefined;
};

describe("SettingsPage", () => {
  it("sends only what changed: a new scale and overlap", async () => {
    const fetchMock = serve({
      [`PATCH ${PROJECT}`]: { status: 200, body: makeSettings({ scale_kind: "eight_point", overlap: 3 }) },
    });
    render(<SettingsPage slug="helpfulness" onAuthProblem={vi.fn()} />);

    const five = await screen.findByRole("radio", { name: /5-point with tie/ });
    expect((five as HTMLInputElement).checked).toBe(true);
    expect((screen.getByLabelText(/Lease TTL/) as HTMLInputElement).value).toBe("1800");
    expect(screen.getByText("(30 min)")).toBeTruthy();
    fireEvent.click(screen.getByRole("radio", { name: /8-point without tie/ }));
    fireEvent.change(screen.getByLabelText(/^Overlap/), { target: { value: "3" } });
    fireEvent.click(screen.getByRole("button", { name: "Save settings" }));

    expect((await screen.findByRole("status")).textContent).toContain("Settings saved");
    expect(sentBodies(fetchMock, "PATCH", PROJECT)).toEqual([{ scale_kind: "eight_point", overlap: 3 }]);
    const interfaces = screen.getByRole("region", { name: "Interfaces in use" });
    expect(within(interfaces).getByText("12 tasks")).toBeTruthy();
    expect(within(interfaces).getByText("1 task")).toBeTruthy();
  });

  it("shows each API error next to the field it names", async () => {
    serve({
      [`PATCH ${PROJECT}`]: {
        status: 400,
        body: {
          detail: "Invalid input: overlap, gold_rate, rating_rubric, rating_aspects.",
          errors: {
            overlap: ["Ensure this value is greater than or equal to 1."],
            gold_rate: ["Ensure this value is less than or equal to 0.5."],
            rating_rubric: [{ "3": ["Ensure this field has no more than 500 characters."] }],
            rating_aspects: [{ "1": ["Enter a valid “slug”."] }],
          },
        },
      },
    });
    render(<SettingsPage slug="helpfulness" onAuthProblem={vi.fn()} />);
    await screen.findByLabelText(/^Overlap/);
    fireEvent.change(screen.getByLabelText(/^Overlap/), { target: { value: "0" } });
    fireEvent.change(screen.getByLabelText(/^Gold rate/), { target: { value: "0.9" } });
    fireEvent.change(screen.getByLabelText("Point 3"), { target: { value: "x".repeat(600) } });
    fireEvent.change(screen.getByLabelText(/^Rating aspects/), { target: { value: "accuracy, Not A Slug" } });
    fireEvent.click(screen.getByRole("button", { name: "Save settings" }));

    const alert = await screen.findByRole("alert");
    expect(alert.textContent).toBe("Invalid input: overlap, gold_rate, rating_rubric, rating_aspects.");
    expect(errorOf(screen.getByLabelText(/^Overlap/))).toBe("Ensure this value is greater than or equal to 1.");
    expect(errorOf(screen.getByLabelText(/^Gold rate/))).toBe("Ensure this value is less than or equal to 0.5.");
    expect(errorOf(screen.getByLabelText("Point 3"))).toBe("Ensure this field has no more than 500 characters.");
    expect(errorOf(screen.getByLabelText(/^Rating aspects/))).toBe("“Not A Slug”: Enter a valid “slug”.");
    expect(screen.getByLabelText(/^Max pending/).getAttribute("aria-invalid")).toBeNull();
    expect(screen.getByLabelText("Point 4").getAttribute("aria-invalid")).toBeNull();
  });

  it("edits a custom scale and shows the server's complaint about it next to the points", async () => {
    const fetchMock = serve({
      [`PATCH ${PROJECT}`]: {
        status: 400,
        body: {
          detail: "Invalid input: custom_scale. a scale needs at least one point for A and one for B",
          errors: { custom_scale: ["a scale needs at least one point for A and one for B"] },
        },
      },
    });
    render(<SettingsPage slug="helpfulness" onAuthProblem={vi.fn()} />);
    fireEvent.click(await screen.findByRole("radio", { name: /Custom/ }));
    const points = screen.getByRole("group", { name: /Custom scale points/ });
    expect(within(points).getAllByRole("listitem")).toHaveLength(3);
    fireEvent.click(screen.getByRole("button", { name: "Remove point 3" }));
    fireEvent.change(screen.getByLabelText("Point 1 label"), { target: { value: "Left wins" } });
    fireEvent.click(screen.getByRole("button", { name: "Save settings" }));

    await screen.findByRole("alert");
    expect(sentBodies(fetchMock, "PATCH", PROJECT)).toEqual([
      {
        scale_kind: "custom",
        custom_scale: [
          { value: 1, label: "Left wins", winner: "A", strength: 1 },
          { value: 2, label: "About the same", winner: null, strength: 0 },
        ],
      },
    ]);
    expect(errorOf(points)).toBe("a scale needs at least one point for A and one for B");
  });

  it("refuses a number field that is not a number without asking the server", async () => {
    const fetchMock = serve();
    render(<SettingsPage slug="helpfulness" onAuthProblem={vi.fn()} />);
    fireEvent.change(await screen.findByLabelText(/Lease TTL/), { target: { value: "" } });
    fireEvent.click(screen.getByRole("button", { name: "Save settings" }));
    expect(errorOf(screen.getByLabelText(/Lease TTL/))).toBe("Enter a number.");
    expect(sentBodies(fetchMock, "PATCH", PROJECT)).toEqual([]);
  });
});

describe("placeSettingsErrors", () => {
  it("names the aspect an indexed error is about", () => {
    expect(placeSettingsErrors({ "rating_aspects.0": ["bad"], overlap: ["low"] }, ["Tone"])).toEqual({
      rating_aspects: ["“Tone”: bad"],
      overlap: ["low"],
    });
  });
});
