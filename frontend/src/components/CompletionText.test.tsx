import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { CompletionText, safeUrl } from "./CompletionText";

const HOSTILE = [
  "<script>window.hacked = 1</script>",
  '<img src=x onerror="window.hacked = 2">',
  "[click](javascript:window.hacked=3)",
  "[data](data:text/html,<script>alert(1)</script>)",
  '<svg onload="window.hacked = 4"></svg>',
  "![pixel](https://tracker.example/p.png)",
  "[docs](https://example.org/docs)",
  "```python\nprint('<b>hi</b>')\n```",
].join("\n\n");

describe("CompletionText", () => {
  it("renders markdown with no HTML elements from the text, no script URLs and no remote images", () => {
    const { container } = render(<CompletionText text={HOSTILE} label="A" />);
    expect(container.querySelector("script, img, svg, iframe, [onerror], [onload]")).toBeNull();
    expect(container.textContent).toContain("<script>window.hacked = 1</script>"); // shown as text
    const hrefs = [...container.querySelectorAll("a")].map((a) => a.getAttribute("href"));
    expect(hrefs).toEqual(["https://example.org/docs"]);
    expect(container.querySelector("a")!.getAttribute("rel")).toBe("noopener noreferrer nofollow");
    expect(screen.getByText("click").tagName).toBe("SPAN");
    expect(screen.getByText("[image: pixel]")).toBeTruthy();
    expect(container.querySelector("pre code")?.textContent).toBe("print('<b>hi</b>')\n");
    expect((window as unknown as { hacked?: number }).hacked).toBeUndefined();
  });

  it("toggles to the exact raw text", () => {
    const { container } = render(<CompletionText text={"**bold**\n  kept"} label="B" />);
    const toggle = screen.getByRole("button", { name: "Show raw text of response B" });
    expect(toggle.getAttribute("aria-pressed")).toBe("false");
    fireEvent.click(toggle);
    expect(toggle.getAttribute("aria-pressed")).toBe("true");
    expect(container.querySelector("pre")?.textContent).toBe("**bold**\n  kept");
    expect(container.querySelector("strong")).toBeNull();
  });

  it("allows only absolute http(s) and mailto links", () => {
    expect(safeUrl("https://a.example/x")).toBe("https://a.example/x");
    expect(safeUrl("mailto:a@b.example")).toBe("mailto:a@b.example");
    for (const bad of ["javascript:alert(1)", " JAVASCRIPT:x", "data:text/html,x", "/api/v1/auth/logout/", "vbscript:x"]) {
      expect(safeUrl(bad)).toBe("");
    }
  });
});
