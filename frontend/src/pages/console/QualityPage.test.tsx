import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { AnnotatorQuality, QualityReport } from "../../api/types";
import { mockApi } from "../../test/api";
import { QualityPage } from "./QualityPage";

const QUALITY = "/api/v1/projects/helpfulness/quality/";

function annotator(id: number, name: string, overrides: Partial<AnnotatorQuality> = {}): AnnotatorQuality {
  return {
    annotator_id: id,
    annotator: name,
    n_judgments: 40,
    n_gold: 5,
    n_reask_pairs: 2,
    n_shared_tasks: 10,
    judgments_per_hour: 60,
    gold_accuracy: 0.8,
    self_consistency: 1,
    position_a_rate: 0.5,
    longer_wins_rate: 0.5,
    tie_rate: 0.1,
    mean_time_ms: 60_000,
    agreement_with_others: 0.9,
    ...overrides,
  };
}

const REPORT: QualityReport = {
  project: {
    n_judgments: 80,
    n_gold: 10,
    n_reask_pairs: 4,
    n_shared_tasks: 10,
    judgments_per_hour: 55,
    gold_accuracy: 0.75,
    self_consistency: 0.9,
    position_a_rate: 0.6,
    longer_wins_rate: 0.7,
    tie_rate: 0.1,
    mean_time_ms: 45_000,
    krippendorff_alpha: 0.61,
    fleiss_kappa: null,
    cohen_kappa: 0.5,
  },
  annotators: [
    annotator(1, "ann"),
    annotator(2, "bob", { position_a_rate: 0.85, longer_wins_rate: null, gold_accuracy: 0.4, judgments_per_hour: 120 }),
  ],
};

function renderPage() {
  render(<QualityPage slug="helpfulness" onAuthProblem={vi.fn()} />);
}

describe("QualityPage", () => {
  it("plots each per-annotator metric with a text summary for screen readers", async () => {
    mockApi({ [`GET ${QUALITY}`]: { status: 200, body: REPORT } });
    renderPage();

    const position = await screen.findByRole("img", { name: /Position bias/ });
    expect(position.querySelector("desc")?.textContent).toBe("ann: 50%; bob: 85%");
    expect(position.querySelectorAll(".chart-bar")).toHaveLength(2);
    expect(position.querySelector(".chart-reference")).not.toBeNull(); // the 50% line

    const length = screen.getByRole("img", { name: /Length bias/ });
    expect(length.querySelectorAll(".chart-bar")).toHaveLength(1);
    expect(within(length as unknown as HTMLElement).getByText("no data")).toBeTruthy();

    for (const title of ["Throughput", "Gold accuracy", "Agreement", "Self-consistency"]) {
      expect(screen.getByRole("img", { name: new RegExp(title) })).toBeTruthy();
    }
    const throughput = screen.getByRole("img", { name: /Throughput/ });
    const widths = [...throughput.querySelectorAll(".chart-bar")].map((bar) => Number(bar.getAttribute("width")));
    expect(widths[1]).toBeGreaterThan(widths[0]!); // bob's 120/h is the longer bar
  });

  it("shows the project's agreement and a per-annotator table, with dashes where undefined", async () => {
    mockApi({ [`GET ${QUALITY}`]: { status: 200, body: REPORT } });
    renderPage();
    const table = await screen.findByRole("table", { name: "Per-annotator numbers" });
    const bob = within(table).getByRole("row", { name: /^bob/ });
    expect(within(bob).getAllByRole("cell").map((cell) => cell.textContent)).toEqual([
      "40", "120.0", "60.0 s", "40% (5)", "90% (10)", "100% (2)", "85%", "—", "10%",
    ]);
    expect(screen.getByText("Krippendorff's α").nextElementSibling?.textContent).toBe("0.61");
    expect(screen.getByText("Fleiss' κ").nextElementSibling?.textContent).toBe("—");
  });

  it("says there is nothing to plot before any judgment", async () => {
    mockApi({ [`GET ${QUALITY}`]: { status: 200, body: { ...REPORT, annotators: [] } } });
    renderPage();
    await screen.findByText("No judgments yet, so there is nothing to plot.");
    expect(screen.queryByRole("img")).toBeNull();
  });

  it("explains a failed load and tries again", async () => {
    mockApi({
      [`GET ${QUALITY}`]: [{ status: 502 }, { status: 200, body: REPORT }],
    });
    renderPage();
    expect((await screen.findByRole("alert")).textContent).toBe(
      "Could not load the quality report: The server answered with an error (HTTP 502).",
    );
    fireEvent.click(screen.getByRole("button", { name: "Try again" }));
    await screen.findByRole("table");
  });
});
