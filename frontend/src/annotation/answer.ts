import type { Assignment, JudgmentRequest } from "../api/types";
import { candidateLabels, type Draft } from "./draft";

export type Answer =
  | { ok: true; request: JudgmentRequest }
  /** What is still missing, in words, and the field it belongs to. */
  | { ok: false; field: string; message: string };

/** The request to send for this draft, or what the annotator still has to do. */
export function answerFrom(assignment: Assignment, draft: Draft, timeSpentMs: number): Answer {
  const specific = interfaceFields(assignment, draft);
  if ("message" in specific) return { ok: false, ...specific };
  let rewrite: JudgmentRequest["rewrite"];
  if (draft.rewrite) {
    const original = assignment.candidates.find((c) => c.label === draft.rewrite!.label)?.content;
    if (!draft.rewrite.content.trim()) {
      return { ok: false, field: "rewrite", message: "The rewrite is empty: write the improved reply or cancel the edit." };
    }
    if (draft.rewrite.content !== original) rewrite = draft.rewrite;
  }
  const request: JudgmentRequest = {
    ...specific.fields,
    idempotency_key: draft.idempotencyKey,
    time_spent_ms: Math.max(0, Math.round(timeSpentMs)),
    comment: draft.comment.trim(),
  };
  if (rewrite) request.rewrite = rewrite;
  if (draft.flags.length) request.flags = draft.flags;
  return { ok: true, request };
}

type Specific = { fields: Partial<JudgmentRequest> } | { field: string; message: string };

function interfaceFields(assignment: Assignment, draft: Draft): Specific {
  switch (assignment.interface) {
    case "pairwise":
      if (draft.bothBad) return { fields: { choice: null, both_bad: true } };
      if (draft.choice === null) return { field: "choice", message: "Choose a point on the scale first." };
      return { fields: { choice: draft.choice } };
    case "ranking":
      return { fields: { ranking: draft.ranking } };
    case "rating": {
      const missing = candidateLabels(assignment).filter((label) => !draft.ratings[label]?.overall);
      if (missing.length) {
        const which = missing.map((label) => `response ${label}`).join(", ");
        return { field: "ratings", message: `Give an overall rating to ${which}.` };
      }
      return { fields: { ratings: draft.ratings } };
    }
    case "thumbs":
      if (!draft.thumbs) return { field: "thumbs", message: "Choose thumbs up or thumbs down first." };
      return { fields: { thumbs: draft.thumbs } };
  }
}
