import { fireEvent, render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { App } from "../App";
import { mockApi, sentBodies } from "../test/api";

const ACCEPT = "/api/v1/auth/invite/accept/";

describe("InvitePage", () => {
  it("lets an invited person who is not signed in set a password, then sign in", async () => {
    const fetchMock = mockApi({
      "GET /api/v1/auth/me/": { status: 403, body: { detail: "Authentication credentials were not provided." } },
      [`POST ${ACCEPT}`]: [
        { status: 400, body: { detail: "Invalid input: password.", errors: { password: ["This password is too common."] } } },
        { status: 204 },
      ],
    });
    window.history.replaceState(null, "", "/invite/Mw/abc-123");
    render(<App />);

    const password = await screen.findByLabelText("New password");
    expect(window.location.pathname).toBe("/invite/Mw/abc-123"); // not sent to /login
    fireEvent.change(password, { target: { value: "password" } });
    fireEvent.change(screen.getByLabelText("The same password again"), { target: { value: "passwort" } });
    fireEvent.click(screen.getByRole("button", { name: "Set password" }));
    const again = screen.getByLabelText("The same password again");
    expect(document.getElementById(again.getAttribute("aria-describedby")!)?.textContent).toBe("The two passwords differ.");
    expect(sentBodies(fetchMock, "POST", ACCEPT)).toEqual([]);

    fireEvent.change(again, { target: { value: "password" } });
    fireEvent.click(screen.getByRole("button", { name: "Set password" }));
    await screen.findByText("This password is too common.");
    expect(password.getAttribute("aria-describedby")).toBe("invite-password-error");
    expect(screen.queryByRole("alert")).toBeNull(); // the message sits by the field, not twice

    fireEvent.change(password, { target: { value: "a-much-longer-one" } });
    fireEvent.change(again, { target: { value: "a-much-longer-one" } });
    fireEvent.click(screen.getByRole("button", { name: "Set password" }));
    await screen.findByRole("heading", { name: "Your password is set" });
    expect(sentBodies(fetchMock, "POST", ACCEPT).at(-1)).toEqual({ uid: "Mw", token: "abc-123", password: "a-much-longer-one" });
    expect(screen.getByRole("link", { name: "Sign in" }).getAttribute("href")).toBe("/login");
  });

  it("says a used or expired link is the problem", async () => {
    mockApi({
      "GET /api/v1/auth/me/": { status: 403, body: { detail: "no" } },
      [`POST ${ACCEPT}`]: {
        status: 400,
        body: { detail: "Invalid input: token. this invitation link was used or has expired", errors: { token: ["this invitation link was used or has expired"] } },
      },
    });
    window.history.replaceState(null, "", "/invite/Mw/old");
    render(<App />);
    fireEvent.change(await screen.findByLabelText("New password"), { target: { value: "a-much-longer-one" } });
    fireEvent.change(screen.getByLabelText("The same password again"), { target: { value: "a-much-longer-one" } });
    fireEvent.click(screen.getByRole("button", { name: "Set password" }));
    expect((await screen.findByRole("alert")).textContent).toBe(
      "This invitation link was used or has expired. Ask your admin for a new link.",
    );
  });
});
