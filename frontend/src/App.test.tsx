import { fireEvent, render, screen, waitFor } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { App } from "./App";
import { makeAssignment, mockApi } from "./test/api";

const ANN = { id: 3, username: "ann", role: "annotator" };
const NOT_LOGGED_IN = { status: 403, body: { detail: "Authentication credentials were not provided." } };

describe("App", () => {
  it("sends a visitor who is not logged in to /login, then back to / after login", async () => {
    mockApi({
      "GET /api/v1/auth/me/": NOT_LOGGED_IN,
      "POST /api/v1/auth/login/": { status: 200, body: ANN },
      "GET /api/v1/assignments/next/": { status: 200, body: { assignment: makeAssignment(1) } },
    });
    window.history.replaceState(null, "", "/");
    render(<App />);

    await screen.findByRole("heading", { name: "Sign in to Arbiter" });
    // The address follows in an effect after the page renders: under load, a moment later.
    await waitFor(() => expect(window.location.pathname).toBe("/login"));

    fireEvent.change(screen.getByLabelText("Username"), { target: { value: "ann" } });
    fireEvent.change(screen.getByLabelText("Password"), { target: { value: "pw" } });
    fireEvent.click(screen.getByRole("button", { name: "Sign in" }));

    await screen.findByTestId("candidate-A");
    expect(window.location.pathname).toBe("/");
    expect(screen.getByRole("banner").textContent).toContain("ann");
  });

  it("logs out from the header", async () => {
    mockApi({
      "GET /api/v1/auth/me/": { status: 200, body: ANN },
      "POST /api/v1/auth/logout/": { status: 204 },
      "GET /api/v1/assignments/next/": { status: 200, body: { assignment: null } },
    });
    render(<App />);

    fireEvent.click(await screen.findByRole("button", { name: "Log out" }));
    await screen.findByRole("heading", { name: "Sign in to Arbiter" });
    await waitFor(() => expect(window.location.pathname).toBe("/login"));
  });

  it("returns to login when the session is lost mid-way", async () => {
    mockApi({
      "GET /api/v1/auth/me/": [{ status: 200, body: ANN }, NOT_LOGGED_IN],
      "GET /api/v1/assignments/next/": NOT_LOGGED_IN,
    });
    render(<App />);
    await screen.findByRole("heading", { name: "Sign in to Arbiter" });
  });

  it("shows an unknown path as not found", async () => {
    mockApi({ "GET /api/v1/auth/me/": { status: 200, body: ANN } });
    window.history.replaceState(null, "", "/nowhere");
    render(<App />);
    await screen.findByRole("heading", { name: "Page not found" });
    fireEvent.click(screen.getByRole("link", { name: "Go to the comparison page" }));
    await waitFor(() => expect(window.location.pathname).toBe("/"));
  });
});
