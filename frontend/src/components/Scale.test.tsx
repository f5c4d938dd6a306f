import { fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it, vi } from "vitest";
import type { ScalePoint } from "../api/types";
import { FIVE_POINT_SCALE } from "../test/api";
import { Scale } from "./Scale";

const EIGHT_POINT_SCALE: ScalePoint[] = Array.from({ length: 8 }, (_, i) => ({
  value: i + 1,
  label: `Point ${i + 1}`,
  winner: i < 4 ? "A" : "B",
  strength: i < 4 ? 4 - i : i - 3,
}));

function Harness({ points = FIVE_POINT_SCALE, onSubmit = () => {} }: { points?: ScalePoint[]; onSubmit?: () => void }) {
  const [value, setValue] = useState<number | null>(null);
  return (
    <>
      <Scale points={points} value={value} onChange={setValue} onSubmit={onSubmit} />
      <label htmlFor="note">Note</label>
      <textarea id="note" />
      <button type="button">Other button</button>
    </>
  );
}

const checkedLabels = () =>
  screen
    .getAllByRole("radio")
    .filter((radio) => radio.getAttribute("aria-checked") === "true")
    .map((radio) => radio.getAttribute("aria-label"));

describe("Scale", () => {
  it("renders one radio per point from the data, named by its label", () => {
    render(<Harness points={EIGHT_POINT_SCALE} />);
    const radios = screen.getAllByRole("radio");
    expect(radios).toHaveLength(8);
    expect(radios.map((radio) => radio.getAttribute("aria-label"))).toEqual(
      EIGHT_POINT_SCALE.map((point) => point.label),
    );
    expect(checkedLabels()).toEqual([]);
  });

  it("selects the N-th point with digit N and ignores digits past the end", () => {
    render(<Harness />);
    fireEvent.keyDown(document.body, { key: "3" });
    expect(checkedLabels()).toEqual(["Tie"]);
    fireEvent.keyDown(document.body, { key: "5" });
    expect(checkedLabels()).toEqual(["B is much better"]);
    fireEvent.keyDown(document.body, { key: "6" });
    expect(checkedLabels()).toEqual(["B is much better"]);
  });

  it("reaches the 8th point of a longer scale by keyboard", () => {
    render(<Harness points={EIGHT_POINT_SCALE} />);
    fireEvent.keyDown(document.body, { key: "8" });
    expect(checkedLabels()).toEqual(["Point 8"]);
  });

  it("selects on click", () => {
    render(<Harness />);
    fireEvent.click(screen.getByRole("radio", { name: "A is better" }));
    expect(checkedLabels()).toEqual(["A is better"]);
  });

  it("calls submit on Enter", () => {
    const onSubmit = vi.fn();
    render(<Harness onSubmit={onSubmit} />);
    fireEvent.keyDown(document.body, { key: "Enter" });
    expect(onSubmit).toHaveBeenCalledTimes(1);
  });

  it("calls submit on Enter while a scale point has focus", () => {
    const onSubmit = vi.fn();
    render(<Harness onSubmit={onSubmit} />);
    fireEvent.keyDown(screen.getByRole("radio", { name: "Tie" }), { key: "Enter" });
    expect(onSubmit).toHaveBeenCalledTimes(1);
  });

  it("leaves Enter on another button to that button", () => {
    const onSubmit = vi.fn();
    render(<Harness onSubmit={onSubmit} />);
    fireEvent.keyDown(screen.getByRole("button", { name: "Other button" }), { key: "Enter" });
    expect(onSubmit).not.toHaveBeenCalled();
  });

  it("ignores digits and Enter typed inside a textarea", () => {
    const onSubmit = vi.fn();
    render(<Harness onSubmit={onSubmit} />);
    const textarea = screen.getByLabelText("Note");
    fireEvent.keyDown(textarea, { key: "2" });
    fireEvent.keyDown(textarea, { key: "Enter" });
    expect(checkedLabels()).toEqual([]);
    expect(onSubmit).not.toHaveBeenCalled();
  });

  it("ignores digits pressed with a modifier (browser shortcuts)", () => {
    render(<Harness />);
    fireEvent.keyDown(document.body, { key: "1", ctrlKey: true });
    expect(checkedLabels()).toEqual([]);
  });

  it("moves the selection and focus with arrow keys, one Tab stop for the group", () => {
    render(<Harness />);
    const radios = screen.getAllByRole("radio");
    expect(radios.map((radio) => radio.tabIndex)).toEqual([0, -1, -1, -1, -1]);
    fireEvent.keyDown(radios[0]!, { key: "ArrowRight" });
    expect(checkedLabels()).toEqual(["A is much better"]);
    fireEvent.keyDown(radios[0]!, { key: "ArrowRight" });
    expect(checkedLabels()).toEqual(["A is better"]);
    expect(document.activeElement).toBe(radios[1]);
    fireEvent.keyDown(radios[1]!, { key: "ArrowLeft" });
    fireEvent.keyDown(radios[0]!, { key: "ArrowLeft" });
    expect(checkedLabels()).toEqual(["B is much better"]);
    expect(radios.map((radio) => radio.tabIndex)).toEqual([-1, -1, -1, -1, 0]);
  });
});
