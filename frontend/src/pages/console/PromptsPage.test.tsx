import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { mockApi } from "../../test/api";
import { PromptsPage } from "./PromptsPage";

const IMPORT = "/api/v1/projects/helpfulness/prompts/import/";
const file = (name: string, text: string) => new File([text], name, { type: "application/octet-stream" });

describe("PromptsPage", () => {
  it("uploads a file and lists every line that was not imported", async () => {
    const fetchMock = mockApi({
      [`POST ${IMPORT}`]: {
        status: 200,
        body: {
          created: 2,
          duplicates: [4, 6],
          errors: [
            { line: 3, field: "prompt", message: "must be a non-empty string" },
            { line: 5, field: "json", message: "not valid JSON" },
          ],
        },
      },
    });
    render(<PromptsPage slug="helpfulness" />);
    fireEvent.change(screen.getByLabelText("Prompt file"), { target: { files: [file("p.jsonl", '{"prompt": "hi"}\n')] } });
    fireEvent.click(screen.getByRole("button", { name: "Import" }));

    const report = await screen.findByRole("region", { name: "Report for p.jsonl" });
    expect(within(report).getByRole("status").textContent).toBe(
      "2 prompts imported, 2 duplicates skipped, 2 lines with errors.",
    );
    expect(within(report).getByText("Duplicate lines: 4 and 6.")).toBeTruthy();
    const rows = within(report).getAllByRole("row").map((row) => row.textContent);
    expect(rows).toEqual(["LineFieldProblem", "3promptmust be a non-empty string", "5jsonnot valid JSON"]);
    const [, init] = fetchMock.mock.calls[0]!;
    expect(init?.body).toBeInstanceOf(FormData);
    expect((init?.body as FormData).get("file")).toBeInstanceOf(File);
    expect((init?.headers as Record<string, string>)["X-CSRFToken"]).toBe("test-csrf-token");
  });

  it("shows a refused file's reason next to the file input", async () => {
    mockApi({
      [`POST ${IMPORT}`]: {
        status: 400,
        body: { detail: "Invalid input: file. use a .jsonl or .csv file", errors: { file: ["use a .jsonl or .csv file"] } },
      },
    });
    render(<PromptsPage slug="helpfulness" />);
    const input = screen.getByLabelText("Prompt file");
    fireEvent.click(screen.getByRole("button", { name: "Import" }));
    expect(document.getElementById(input.getAttribute("aria-describedby")!)?.textContent).toBe(
      "Choose a .jsonl or .csv file first.",
    );

    fireEvent.change(input, { target: { files: [file("p.txt", "hello")] } });
    fireEvent.click(screen.getByRole("button", { name: "Import" }));
    expect((await screen.findByRole("alert")).textContent).toBe("Invalid input: file. use a .jsonl or .csv file");
    expect(document.getElementById(input.getAttribute("aria-describedby")!)?.textContent).toBe("use a .jsonl or .csv file");
  });
});
