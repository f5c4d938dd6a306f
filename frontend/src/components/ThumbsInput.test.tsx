import { fireEvent, render, screen } from "@testing-library/react";
import { useState } from "react";
import { describe, expect, it } from "vitest";
import type { Thumbs } from "../api/types";
import { ThumbsInput } from "./ThumbsInput";

function Harness() {
  const [thumbs, setThumbs] = useState<Thumbs | null>(null);
  const [rewrite, setRewrite] = useState<string | null>(null);
  return (
    <>
      <ThumbsInput
        candidate={{ label: "A", content: "The capital of France is Lyon." }}
        value={thumbs}
        onChange={setThumbs}
        rewrite={rewrite}
        onRewriteChange={setRewrite}
      />
      <label htmlFor="other">Other text</label>
      <textarea id="other" />
      <output data-testid="state">{JSON.stringify({ thumbs, rewrite })}</output>
    </>
  );
}

const state = () => JSON.parse(screen.getByTestId("state").textContent!);

describe("ThumbsInput", () => {
  it("chooses up or down by click and by the keys 1 and 2", () => {
    render(<Harness />);
    fireEvent.click(screen.getByRole("radio", { name: "Good response" }));
    expect(state().thumbs).toBe("up");
    fireEvent.keyDown(document.body, { key: "2" });
    expect(state().thumbs).toBe("down");
    expect(screen.getByRole("radio", { name: "Bad response" }).getAttribute("aria-checked")).toBe("true");
    fireEvent.keyDown(document.body, { key: "1" });
    expect(state().thumbs).toBe("up");
  });

  it("opens an editor on the response's text with E, focused, and discards it", () => {
    render(<Harness />);
    fireEvent.keyDown(document.body, { key: "e" });
    const editor = screen.getByLabelText("Your improved response A") as HTMLTextAreaElement;
    expect(editor.value).toBe("The capital of France is Lyon.");
    expect(document.activeElement).toBe(editor);

    fireEvent.change(editor, { target: { value: "The capital of France is Paris." } });
    fireEvent.keyDown(editor, { key: "2" }); // typing in the editor is not a shortcut
    expect(state()).toEqual({ thumbs: null, rewrite: "The capital of France is Paris." });

    fireEvent.click(screen.getByRole("button", { name: "Discard edit" }));
    expect(state().rewrite).toBeNull();
    expect(screen.getByRole("button", { name: "Edit response A" })).toBeTruthy();
  });

  it("ignores its keys while another text box has focus", () => {
    render(<Harness />);
    fireEvent.keyDown(screen.getByLabelText("Other text"), { key: "1" });
    fireEvent.keyDown(screen.getByLabelText("Other text"), { key: "e" });
    expect(state()).toEqual({ thumbs: null, rewrite: null });
  });
});
