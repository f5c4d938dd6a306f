import { fireEvent, render, screen, within } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import { aspectName, RatingInput } from "./RatingInput";

const RUBRIC = {
  "1": "Very poor: inaccurate or unhelpful",
  "2": "Poor: partly accurate",
  "3": "Fair: acceptable",
  "4": "Good: accurate and useful",
  "5": "Excellent: especially helpful",
};

function Harness({ aspects = ["factual_accuracy"] }: { aspects?: string[] }) {
  const [value, setValue] = useState<Record<string, number>>({});
  return (
    <>
      <RatingInput
        label="B"
        rubric={RUBRIC}
        aspects={aspects}
        value={value}
        onChange={(name, score) => setValue((v) => ({ ...v, [name]: score }))}
      />
      <output data-testid="value">{JSON.stringify(value)}</output>
    </>
  );
}

const value = () => JSON.parse(screen.getByTestId("value").textContent!);

describe("RatingInput", () => {
  it("shows the rubric's wording beside each overall point, labelled for the response", () => {
    render(<Harness />);
    const overall = screen.getByRole("group", { name: "Overall rating of response B" });
    const radios = within(overall).getAllByRole("radio");
    expect(radios).toHaveLength(5);
    expect(within(overall).getByText("Excellent: especially helpful")).toBeTruthy();
    fireEvent.click(within(overall).getByLabelText(/Good: accurate and useful/));
    expect(value()).toEqual({ overall: 4 });
  });

  it("offers each project aspect as its own 1-5 group named in words", () => {
    render(<Harness aspects={["factual_accuracy", "tone"]} />);
    const accuracy = screen.getByRole("group", { name: /Factual accuracy/ });
    expect(screen.getByRole("group", { name: /Tone/ })).toBeTruthy();
    fireEvent.click(within(accuracy).getByLabelText(/^2/));
    expect(value()).toEqual({ factual_accuracy: 2 });
  });

  it("picks a point with a digit typed while the group has focus", () => {
    render(<Harness />);
    const overall = screen.getByRole("group", { name: "Overall rating of response B" });
    fireEvent.keyDown(within(overall).getAllByRole("radio")[0]!, { key: "5" });
    expect(value()).toEqual({ overall: 5 });
    const accuracy = screen.getByRole("group", { name: /Factual accuracy/ });
    fireEvent.keyDown(within(accuracy).getAllByRole("radio")[0]!, { key: "3" });
    expect(value()).toEqual({ overall: 5, factual_accuracy: 3 });
  });

  it("names aspects in words", () => {
    expect(aspectName("factual_accuracy")).toBe("Factual accuracy");
    expect(aspectName("tone")).toBe("Tone");
  });
});
