import { createEvent, fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import type { CandidateLabel } from "../api/types";
import { moveTo, Ranking } from "./Ranking";

const CANDIDATES = [
  { label: "A", content: "First answer, about cats." },
  { label: "B", content: "Second answer, about dogs." },
  { label: "C", content: "Third answer, about birds." },
];

function Harness({ initial = ["A", "B", "C"] as CandidateLabel[] }) {
  const [order, setOrder] = useState<CandidateLabel[]>(initial);
  return (
    <>
      <Ranking candidates={CANDIDATES} order={order} onChange={setOrder} />
      <output data-testid="order">{order.join("")}</output>
    </>
  );
}

const order = () => screen.getByTestId("order").textContent;
const item = (label: string) => screen.getByTestId(`rank-item-${label}`);
const announced = () => screen.getByTestId("ranking-announcement").textContent;

/** A DataTransfer stand-in: jsdom has none. */
function dataTransfer() {
  const data: Record<string, string> = {};
  return {
    setData: (type: string, value: string) => (data[type] = value),
    getData: (type: string) => data[type] ?? "",
    effectAllowed: "all",
    dropEffect: "move",
  };
}

describe("moveTo", () => {
  it("moves a label to a position, clamped to the ends", () => {
    expect(moveTo(["A", "B", "C"], "C", 0)).toEqual(["C", "A", "B"]);
    expect(moveTo(["A", "B", "C"], "A", 1)).toEqual(["B", "A", "C"]);
    expect(moveTo(["A", "B", "C"], "A", 9)).toEqual(["B", "C", "A"]);
    expect(moveTo(["A", "B", "C"], "B", -1)).toEqual(["B", "A", "C"]);
  });
});

describe("Ranking", () => {
  it("lists the responses best first with their rank in the accessible name, one Tab stop", () => {
    render(<Harness />);
    const items = screen.getAllByRole("button", { name: /^Response [ABC], rank/ });
    expect(items.map((el) => el.getAttribute("aria-label"))).toEqual([
      "Response A, rank 1 of 3",
      "Response B, rank 2 of 3",
      "Response C, rank 3 of 3",
    ]);
    expect(items.map((el) => el.tabIndex)).toEqual([0, -1, -1]);
    expect(item("B").textContent).toContain("Second answer, about dogs.");
  });

  it("moves focus with the arrow keys and the focused response with Alt+arrows, announcing it", () => {
    render(<Harness />);
    item("A").focus();
    fireEvent.keyDown(item("A"), { key: "ArrowDown" });
    expect(document.activeElement).toBe(item("B"));
    expect(order()).toBe("ABC");

    fireEvent.keyDown(item("B"), { key: "ArrowUp", altKey: true });
    expect(order()).toBe("BAC");
    expect(document.activeElement).toBe(item("B"));
    expect(item("B").getAttribute("aria-label")).toBe("Response B, rank 1 of 3");
    expect(announced()).toBe("Response B moved to position 1 of 3.");

    fireEvent.keyDown(item("B"), { key: "ArrowDown", altKey: true });
    fireEvent.keyDown(item("B"), { key: "ArrowDown", altKey: true });
    expect(order()).toBe("ACB");
    expect(announced()).toBe("Response B moved to position 3 of 3.");
  });

  it("picks up with Space, moves with arrows and Home, drops with Space", () => {
    render(<Harness />);
    item("C").focus();
    fireEvent.keyDown(item("C"), { key: " " });
    expect(item("C").getAttribute("aria-pressed")).toBe("true");
    expect(announced()).toMatch(/^Response C picked up at position 3 of 3\./);

    fireEvent.keyDown(item("C"), { key: "ArrowUp" });
    expect(order()).toBe("ACB");
    fireEvent.keyDown(item("C"), { key: "Home" });
    expect(order()).toBe("CAB");
    fireEvent.keyDown(item("C"), { key: " " });
    expect(item("C").getAttribute("aria-pressed")).toBe("false");
    expect(announced()).toBe("Response C dropped at position 1 of 3.");

    fireEvent.keyDown(item("C"), { key: "ArrowDown" }); // dropped: arrows move focus again
    expect(order()).toBe("CAB");
    expect(document.activeElement).toBe(item("A"));
  });

  it("puts a picked-up response back with Escape", () => {
    render(<Harness />);
    fireEvent.keyDown(item("A"), { key: " " });
    fireEvent.keyDown(item("A"), { key: "End" });
    expect(order()).toBe("BCA");
    fireEvent.keyDown(item("A"), { key: "Escape" });
    expect(order()).toBe("ABC");
    expect(announced()).toBe("Move cancelled. Response A is back at position 1 of 3.");
  });

  it("moves the focused response to rank N with digit N", () => {
    render(<Harness />);
    fireEvent.keyDown(item("A"), { key: "3" });
    expect(order()).toBe("BCA");
    fireEvent.keyDown(item("A"), { key: "9" }); // no rank 9: ignored
    expect(order()).toBe("BCA");
  });

  it("keeps Enter for the page (submit) rather than handling it", () => {
    render(<Harness />);
    const enter = createEvent.keyDown(item("A"), { key: "Enter" });
    fireEvent(item("A"), enter);
    expect(enter.defaultPrevented).toBe(false);
    expect(order()).toBe("ABC");
  });

  it("reorders by drag and drop", () => {
    render(<Harness />);
    const transfer = dataTransfer();
    fireEvent.dragStart(item("C"), { dataTransfer: transfer });
    fireEvent.dragOver(item("A"), { dataTransfer: transfer });
    expect(order()).toBe("CAB"); // a live preview while dragging
    fireEvent.drop(item("C"), { dataTransfer: transfer });
    fireEvent.dragEnd(item("C"), { dataTransfer: transfer });
    expect(order()).toBe("CAB");
    expect(announced()).toBe("Response C dropped at position 1 of 3.");
  });

  it("undoes the preview when a drag is dropped outside the list", () => {
    render(<Harness />);
    const transfer = dataTransfer();
    fireEvent.dragStart(item("A"), { dataTransfer: transfer });
    fireEvent.dragOver(item("C"), { dataTransfer: transfer });
    expect(order()).toBe("BCA");
    transfer.dropEffect = "none";
    fireEvent.dragEnd(item("A"), { dataTransfer: transfer });
    expect(order()).toBe("ABC");
  });

  it("moves with the up and down buttons (touch and mouse)", () => {
    render(<Harness />);
    expect(screen.getByRole("button", { name: "Move response A up" })).toHaveProperty("disabled", true);
    fireEvent.click(screen.getByRole("button", { name: "Move response A down" }));
    expect(order()).toBe("BAC");
    fireEvent.click(screen.getByRole("button", { name: "Move response C up" }));
    expect(order()).toBe("BCA");
  });
});
