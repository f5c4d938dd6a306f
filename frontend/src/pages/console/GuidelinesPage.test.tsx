import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import type { GuidelinesVersion } from "../../api/types";
import { mockApi, sentBodies } from "../../test/api";
import { makeSettings } from "../../test/console";
import { GuidelinesPage } from "./GuidelinesPage";

const PROJECT = "/api/v1/projects/helpfulness/";
const VERSIONS = `${PROJECT}guidelines/`;

const version = (n: number, text: string, by: string | null = "rita"): GuidelinesVersion => ({
  version: n,
  text,
  created_by: by,
  created_at: "2030-01-01T00:00:00Z",
});

describe("GuidelinesPage", () => {
  it("lists the versions and saves an edited text as the next one", async () => {
    const fetchMock = mockApi({
      [`GET ${PROJECT}`]: { status: 200, body: makeSettings({ guidelines: "Be kind.", guidelines_version: 2 }) },
      [`GET ${VERSIONS}`]: [
        { status: 200, body: [version(2, "Be kind."), version(1, "First draft", null)] },
        { status: 200, body: [version(3, "Be kind and brief."), version(2, "Be kind."), version(1, "First draft", null)] },
      ],
      [`PATCH ${PROJECT}`]: { status: 200, body: makeSettings({ guidelines: "Be kind and brief.", guidelines_version: 3 }) },
    });
    render(<GuidelinesPage slug="helpfulness" onAuthProblem={vi.fn()} />);

    const editor = (await screen.findByLabelText("Guidelines")) as HTMLTextAreaElement;
    expect(editor.value).toBe("Be kind.");
    const versions = screen.getByRole("region", { name: "Versions" });
    expect(within(versions).getAllByRole("listitem").map((item) => item.querySelector("summary")?.textContent)).toEqual([
      expect.stringMatching(/^Version 2in force .* by rita$/),
      expect.stringMatching(/^Version 1 /),
    ]);

    fireEvent.click(screen.getByRole("button", { name: "Save as a new version" }));
    expect((await screen.findByRole("status")).textContent).toBe("No change: this is version 2 already.");
    expect(sentBodies(fetchMock, "PATCH", PROJECT)).toEqual([]);

    fireEvent.click(within(versions).getByRole("button", { name: "Copy version 1 into the editor" }));
    expect(editor.value).toBe("First draft");
    fireEvent.change(editor, { target: { value: "Be kind and brief." } });
    fireEvent.click(screen.getByRole("button", { name: "Save as a new version" }));

    await screen.findByText("Saved as version 3. New judgments record this version.");
    expect(sentBodies(fetchMock, "PATCH", PROJECT)).toEqual([{ guidelines: "Be kind and brief." }]);
    expect(await within(versions).findByText(/^Version 3/)).toBeTruthy();
    expect(screen.getByText(/In force: version 3/)).toBeTruthy();
  });

  it("shows why the text was refused next to the editor", async () => {
    mockApi({
      [`GET ${PROJECT}`]: { status: 200, body: makeSettings() },
      [`GET ${VERSIONS}`]: { status: 200, body: [version(2, "Prefer the more helpful answer.")] },
      [`PATCH ${PROJECT}`]: {
        status: 400,
        body: {
          detail: "Invalid input: guidelines.",
          errors: { guidelines: ["Ensure this field has no more than 100000 characters."] },
        },
      },
    });
    render(<GuidelinesPage slug="helpfulness" onAuthProblem={vi.fn()} />);
    const editor = await screen.findByLabelText("Guidelines");
    fireEvent.change(editor, { target: { value: "long" } });
    fireEvent.click(screen.getByRole("button", { name: "Save as a new version" }));
    expect((await screen.findByRole("alert")).textContent).toBe("Invalid input: guidelines.");
    expect(editor.getAttribute("aria-invalid")).toBe("true");
    expect(document.getElementById(editor.getAttribute("aria-describedby")!)?.textContent).toBe(
      "Ensure this field has no more than 100000 characters.",
    );
  });
});
