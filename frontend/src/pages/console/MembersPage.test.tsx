import { fireEvent, render, screen, within } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { mockApi, sentBodies } from "../../test/api";
import { MembersPage } from "./MembersPage";

const MEMBERS = "/api/v1/projects/helpfulness/members/";
const LIST = [
  { username: "ann", role: "annotator" },
  { username: "rita", role: "researcher" },
];

describe("MembersPage", () => {
  it("shows a researcher the members but no way to add one", async () => {
    mockApi({ [`GET ${MEMBERS}`]: { status: 200, body: LIST } });
    render(<MembersPage slug="helpfulness" role="researcher" onAuthProblem={vi.fn()} />);
    const table = await screen.findByRole("table", { name: "People in this project and their roles" });
    expect(within(table).getAllByRole("row").map((row) => row.textContent)).toEqual([
      "UsernameRole",
      "annAnnotator",
      "ritaResearcher",
    ]);
    expect(screen.queryByRole("button", { name: "Add member" })).toBeNull();
    expect(screen.getByText(/Only the project's admins add members/)).toBeTruthy();
  });

  it("lets an admin invite someone new and shows the one-time link", async () => {
    const fetchMock = mockApi({
      [`GET ${MEMBERS}`]: { status: 200, body: LIST },
      [`POST ${MEMBERS}`]: {
        status: 201,
        body: { username: "newton", role: "researcher", invite_path: "/invite/Mw/abc-123" },
      },
    });
    render(<MembersPage slug="helpfulness" role="admin" onAuthProblem={vi.fn()} />);
    await screen.findByRole("table");
    fireEvent.change(screen.getByLabelText("Username"), { target: { value: " newton " } });
    fireEvent.change(screen.getByLabelText("Role"), { target: { value: "researcher" } });
    fireEvent.click(screen.getByRole("button", { name: "Add member" }));

    const link = (await screen.findByLabelText("Invitation link")) as HTMLInputElement;
    expect(link.value).toBe(`${window.location.origin}/invite/Mw/abc-123`);
    expect(sentBodies(fetchMock, "POST", MEMBERS)).toEqual([{ username: "newton", role: "researcher" }]);
    expect(screen.getByRole("row", { name: /newton/ }).textContent).toBe("newtonResearcher");
  });

  it("shows the server's words about the username next to it", async () => {
    mockApi({
      [`GET ${MEMBERS}`]: { status: 200, body: [] },
      [`POST ${MEMBERS}`]: {
        status: 400,
        body: { detail: "Invalid input: username.", errors: { username: ["This field may not be blank."] } },
      },
    });
    render(<MembersPage slug="helpfulness" role="admin" onAuthProblem={vi.fn()} />);
    await screen.findByText("No members yet.");
    fireEvent.click(screen.getByRole("button", { name: "Add member" }));
    const username = screen.getByLabelText("Username");
    expect((await screen.findByRole("alert")).textContent).toBe("Invalid input: username.");
    expect(document.getElementById(username.getAttribute("aria-describedby")!)?.textContent).toBe(
      "This field may not be blank.",
    );
    expect(screen.getByLabelText("Role").getAttribute("aria-invalid")).toBeNull();
  });
});
