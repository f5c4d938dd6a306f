import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { mockApi, sentBodies } from "../test/api";
import { LoginPage } from "./LoginPage";

const LOGIN = "/api/v1/auth/login/";

function fillAndSubmit(username: string, password: string) {
  fireEvent.change(screen.getByLabelText("Username"), { target: { value: username } });
  fireEvent.change(screen.getByLabelText("Password"), { target: { value: password } });
  fireEvent.click(screen.getByRole("button", { name: "Sign in" }));
}

describe("LoginPage", () => {
  it("shows a field error from a 400 response under that field", async () => {
    mockApi({
      [`POST ${LOGIN}`]: {
        status: 400,
        body: { detail: "Please correct the errors below.", errors: { password: ["This field may not be blank."] } },
      },
    });
    render(<LoginPage onLoggedIn={vi.fn()} />);
    fillAndSubmit("ann", "");

    const password = screen.getByLabelText("Password");
    await waitFor(() => expect(password.getAttribute("aria-invalid")).toBe("true"));
    expect(document.getElementById(password.getAttribute("aria-describedby")!)?.textContent).toBe(
      "This field may not be blank.",
    );
    expect(screen.getByLabelText("Username").getAttribute("aria-invalid")).toBeNull();
    expect(screen.getByRole("alert").textContent).toBe("Please correct the errors below.");
  });

  it("shows wrong credentials once, under the password", async () => {
    mockApi({
      [`POST ${LOGIN}`]: {
        status: 400,
        body: { detail: "Wrong username or password.", errors: { password: ["Wrong username or password."] } },
      },
    });
    render(<LoginPage onLoggedIn={vi.fn()} />);
    fillAndSubmit("ann", "wrong");
    await screen.findByText("Wrong username or password.");
    expect(screen.getAllByText("Wrong username or password.")).toHaveLength(1);
    expect(screen.getByLabelText("Password").getAttribute("aria-invalid")).toBe("true");
  });

  it("shows errors not tied to a field in words", async () => {
    mockApi({
      [`POST ${LOGIN}`]: {
        status: 400,
        body: { detail: "This account is disabled.", errors: { non_field_errors: ["This account is disabled."] } },
      },
    });
    render(<LoginPage onLoggedIn={vi.fn()} />);
    fillAndSubmit("ann", "pw");
    expect((await screen.findByRole("alert")).textContent).toBe("This account is disabled.");
  });

  it("posts the credentials with the CSRF header and reports the user", async () => {
    const user = { id: 3, username: "ann", role: "annotator" };
    const fetchMock = mockApi({ [`POST ${LOGIN}`]: { status: 200, body: user } });
    const onLoggedIn = vi.fn();
    render(<LoginPage onLoggedIn={onLoggedIn} />);
    fillAndSubmit("ann", "s3cret");

    await waitFor(() => expect(onLoggedIn).toHaveBeenCalledWith(user));
    expect(sentBodies(fetchMock, "POST", LOGIN)).toEqual([{ username: "ann", password: "s3cret" }]);
    const init = fetchMock.mock.calls[0]![1]!;
    expect((init.headers as Record<string, string>)["X-CSRFToken"]).toBe("test-csrf-token");
    expect(init.credentials).toBe("same-origin");
  });
});
