import { describe, expect, it } from "vitest";
import { makeAssignment } from "../test/api";
import { answerFrom } from "./answer";
import { emptyDraft, type Draft } from "./draft";

const THREE = [
  { label: "A", content: "one" },
  { label: "B", content: "two" },
  { label: "C", content: "three" },
];

function answer(overrides: Parameters<typeof makeAssignment>[1], draft: Partial<Draft>) {
  const assignment = makeAssignment(1, overrides);
  return answerFrom(assignment, { ...emptyDraft(assignment, "key-00000001"), ...draft }, 1234.4);
}

describe("answerFrom", () => {
  it("pairwise: needs a choice, or 'both bad' with no choice", () => {
    expect(answer({}, {})).toEqual({ ok: false, field: "choice", message: "Choose a point on the scale first." });
    expect(answer({}, { choice: 2 })).toEqual({
      ok: true,
      request: { choice: 2, idempotency_key: "key-00000001", time_spent_ms: 1234, comment: "" },
    });
    expect(answer({}, { bothBad: true, choice: 2 })).toMatchObject({ ok: true, request: { choice: null, both_bad: true } });
  });

  it("ranking: sends the order best first", () => {
    expect(answer({ interface: "ranking", candidates: THREE }, { ranking: ["C", "A", "B"] })).toMatchObject({
      ok: true,
      request: { ranking: ["C", "A", "B"] },
    });
  });

  it("rating: needs an overall rating for every response, aspects optional", () => {
    const overrides = { interface: "rating" as const, candidates: THREE, rating_aspects: ["tone"] };
    expect(answer(overrides, { ratings: { A: { overall: 4, tone: 2 } } })).toEqual({
      ok: false,
      field: "ratings",
      message: "Give an overall rating to response B, response C.",
    });
    const ratings = { A: { overall: 4, tone: 2 }, B: { overall: 1 }, C: { overall: 5 } };
    expect(answer(overrides, { ratings })).toMatchObject({ ok: true, request: { ratings } });
  });

  it("thumbs: needs up or down; sends a rewrite only when the text changed", () => {
    const overrides = { interface: "thumbs" as const, candidates: [{ label: "A", content: "Lyon." }] };
    expect(answer(overrides, {})).toMatchObject({ ok: false, field: "thumbs" });
    const same = answer(overrides, { thumbs: "down", rewrite: { label: "A", content: "Lyon." } });
    expect(same.ok && same.request.rewrite).toBeUndefined();
    expect(answer(overrides, { thumbs: "down", rewrite: { label: "A", content: "Paris." } })).toMatchObject({
      ok: true,
      request: { thumbs: "down", rewrite: { label: "A", content: "Paris." } },
    });
    expect(answer(overrides, { thumbs: "down", rewrite: { label: "A", content: "  " } })).toMatchObject({
      ok: false,
      field: "rewrite",
    });
  });

  it("sends flags only when some are set, and the comment trimmed", () => {
    expect(answer({}, { choice: 1, flags: ["unsafe", "other"], comment: "  odd  " })).toMatchObject({
      ok: true,
      request: { flags: ["unsafe", "other"], comment: "odd" },
    });
  });
});
