import { vi } from "vitest";
import type { Assignment, ScalePoint } from "../api/types";

export interface Reply {
  status: number;
  body?: unknown;
}

/** A function route may answer with a ready Response (e.g. a stream), given the request. */
type Route = Reply | Reply[] | ((init?: RequestInit) => Reply | Response | Promise<Reply | Response>);

/**
 * Stubs global fetch with a table keyed by "METHOD /path". A list of replies is served in
 * order, the last one repeating. Returns the mock so tests can inspect calls.
 */
export function mockApi(routes: Record<string, Route>) {
  const served: Record<string, number> = {};
  const fetchMock = vi.fn(async (input: RequestInfo | URL, init?: RequestInit) => {
    const key = `${init?.method ?? "GET"} ${String(input)}`;
    const route = routes[key];
    if (route === undefined) throw new Error(`Unexpected request: ${key}`);
    let reply: Reply;
    if (typeof route === "function") {
      const answer = await route(init);
      if (answer instanceof Response) return answer;
      reply = answer;
    } else if (Array.isArray(route)) {
      const index = Math.min(served[key] ?? 0, route.length - 1);
      served[key] = (served[key] ?? 0) + 1;
      reply = route[index]!;
    } else reply = route;
    const body = reply.body === undefined ? null : JSON.stringify(reply.body);
    return new Response(body, { status: reply.status, headers: { "Content-Type": "application/json" } });
  });
  vi.stubGlobal("fetch", fetchMock);
  return fetchMock;
}

/** The parsed JSON bodies of calls to `method path`. */
export function sentBodies(fetchMock: ReturnType<typeof mockApi>, method: string, path: string): unknown[] {
  return fetchMock.mock.calls
    .filter(([input, init]) => String(input) === path && (init?.method ?? "GET") === method)
    .map(([, init]) => JSON.parse(String(init?.body)));
}

export const FIVE_POINT_SCALE: ScalePoint[] = [
  { value: 1, label: "A is much better", winner: "A", strength: 2 },
  { value: 2, label: "A is better", winner: "A", strength: 1 },
  { value: 3, label: "Tie", winner: null, strength: 0 },
  { value: 4, label: "B is better", winner: "B", strength: 1 },
  { value: 5, label: "B is much better", winner: "B", strength: 2 },
];

export function makeAssignment(id: number, overrides: Partial<Assignment> = {}): Assignment {
  return {
    id,
    project: { slug: "helpfulness", name: "Helpfulness", guidelines: "Prefer the more helpful answer." },
    prompt: [
      { role: "system", content: "You are a helpful assistant." },
      { role: "user", content: `Question number ${id}?` },
    ],
    candidates: [
      { label: "A", content: `Answer A for ${id}` },
      { label: "B", content: `Answer B for ${id}` },
    ],
    interface: "pairwise",
    scale: FIVE_POINT_SCALE,
    allow_both_bad: true,
    rating_rubric: {},
    rating_aspects: [],
    guidelines_version: 1,
    expires_at: "2030-01-01T00:00:00Z",
    ...overrides,
  };
}
