import { describe, expect, it } from "vitest";
import { mockApi } from "../test/api";
import { ApiError, request } from "./client";
import { newIdempotencyKey } from "./index";

describe("request", () => {
  it("fetches the CSRF cookie first when it is missing", async () => {
    document.cookie = "csrftoken=; expires=Thu, 01 Jan 1970 00:00:00 GMT";
    const fetchMock = mockApi({
      "GET /api/v1/auth/csrf/": () => {
        document.cookie = "csrftoken=fresh-token";
        return { status: 204 };
      },
      "POST /api/v1/auth/logout/": { status: 204 },
    });

    await expect(request("POST", "/api/v1/auth/logout/")).resolves.toBeUndefined();
    expect(fetchMock.mock.calls.map(([url]) => url)).toEqual(["/api/v1/auth/csrf/", "/api/v1/auth/logout/"]);
    const init = fetchMock.mock.calls[1]![1]!;
    expect((init.headers as Record<string, string>)["X-CSRFToken"]).toBe("fresh-token");
  });

  it("turns an error body into an ApiError with field messages", async () => {
    mockApi({
      "POST /x/": { status: 400, body: { detail: "Bad input.", errors: { choice: ["Not a valid choice."] } } },
    });
    const error = await request("POST", "/x/", {}).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 400, message: "Bad input.", fieldErrors: { choice: ["Not a valid choice."] } });
  });

  it("names nested field errors with dots, so forms can place them", async () => {
    mockApi({
      "POST /x/": {
        status: 400,
        body: {
          detail: "Invalid input: rules, filters, overlap.",
          errors: {
            rules: [{ min_strength: ["Too big."] }],
            filters: [{ rounds: { "0": ["Not a round."], "2": ["Nor this."] } }],
            overlap: ["Too small.", "Really."],
          },
        },
      },
    });
    const error = await request("POST", "/x/", {}).catch((caught: unknown) => caught);
    expect((error as ApiError).fieldErrors).toEqual({
      "rules.min_strength": ["Too big."],
      "filters.rounds.0": ["Not a round."],
      "filters.rounds.2": ["Nor this."],
      overlap: ["Too small.", "Really."],
    });
  });

  it("describes errors that carry no JSON", async () => {
    mockApi({ "GET /x/": { status: 502 } });
    await expect(request("GET", "/x/")).rejects.toThrow("The server answered with an error (HTTP 502).");
  });
});

describe("newIdempotencyKey", () => {
  it("makes a v4 UUID even where crypto.randomUUID is unavailable (plain http)", () => {
    const original = crypto.randomUUID;
    Object.defineProperty(crypto, "randomUUID", { value: undefined, configurable: true });
    try {
      expect(newIdempotencyKey()).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    } finally {
      Object.defineProperty(crypto, "randomUUID", { value: original, configurable: true });
    }
  });
});
