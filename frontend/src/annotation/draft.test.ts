import { describe, expect, it } from "vitest";
import { makeAssignment } from "../test/api";
import { clearDraft, emptyDraft, loadDraft, pruneDrafts, saveDraft } from "./draft";

const key = () => "fresh-key-0001";

describe("drafts", () => {
  it("starts empty with a fresh key and the shown order as the ranking", () => {
    const assignment = makeAssignment(1, { interface: "ranking" });
    expect(loadDraft(assignment, key)).toEqual({
      draft: { ...emptyDraft(assignment, "fresh-key-0001"), ranking: ["A", "B"] },
      restored: false,
    });
  });

  it("restores what was saved for the same assignment, key included, until cleared", () => {
    const assignment = makeAssignment(7);
    const draft = { ...emptyDraft(assignment, "kept-key-0001"), choice: 4, comment: "half-typed", flags: ["unsafe" as const] };
    saveDraft(7, draft);
    expect(loadDraft(assignment, key)).toEqual({ draft, restored: true });
    expect(loadDraft(makeAssignment(8), key).restored).toBe(false);
    clearDraft(7);
    expect(loadDraft(assignment, key).restored).toBe(false);
  });

  it("drops saved parts that no longer fit the assignment", () => {
    const assignment = makeAssignment(3, { rating_aspects: ["tone"] });
    localStorage.setItem(
      "arbiter.draft.3",
      JSON.stringify({
        savedAt: Date.now(),
        draft: {
          choice: 42,
          ranking: ["A", "Z"],
          ratings: { A: { overall: 9, tone: 2, gone: 3 }, Q: { overall: 1 } },
          thumbs: "sideways",
          rewrite: { label: "C", content: "x" },
          comment: "kept",
          flags: ["unsafe", "made_up"],
        },
      }),
    );
    const { draft } = loadDraft(assignment, key);
    expect(draft).toEqual({
      ...emptyDraft(assignment, "fresh-key-0001"),
      ratings: { A: { tone: 2 } },
      comment: "kept",
      flags: ["unsafe"],
    });
  });

  it("survives storage that is unreadable JSON", () => {
    localStorage.setItem("arbiter.draft.5", "{not json");
    expect(loadDraft(makeAssignment(5), key).restored).toBe(false);
  });

  it("prunes drafts older than two weeks and leaves other keys alone", () => {
    const now = Date.now();
    localStorage.setItem("arbiter.draft.1", JSON.stringify({ savedAt: now - 15 * 86_400_000, draft: {} }));
    localStorage.setItem("arbiter.draft.2", JSON.stringify({ savedAt: now - 86_400_000, draft: {} }));
    localStorage.setItem("something.else", "1");
    pruneDrafts(now);
    expect(localStorage.getItem("arbiter.draft.1")).toBeNull();
    expect(localStorage.getItem("arbiter.draft.2")).not.toBeNull();
    expect(localStorage.getItem("something.else")).toBe("1");
  });
});
