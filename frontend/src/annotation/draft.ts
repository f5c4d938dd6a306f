import type { Assignment, CandidateLabel, Flag, Thumbs } from "../api/types";

/** Everything an annotator has entered for one assignment but not yet sent. */
export interface Draft {
  choice: number | null;
  bothBad: boolean;
  /** Candidate labels, best first (ranking tasks). */
  ranking: CandidateLabel[];
  /** label -> {"overall" | aspect -> 1..5} (rating tasks). */
  ratings: Record<string, Record<string, number>>;
  thumbs: Thumbs | null;
  /** An improved reply being written; null while no edit is open. */
  rewrite: { label: CandidateLabel; content: string } | null;
  comment: string;
  flags: Flag[];
  /** Kept with the draft so a retry after a reload cannot store a second judgment. */
  idempotencyKey: string;
}

export const FLAGS: readonly { value: Flag; label: string }[] = [
  { value: "unsafe", label: "Unsafe or harmful" },
  { value: "nonsense", label: "Nonsense or broken" },
  { value: "off_topic", label: "Off topic" },
  { value: "private_info", label: "Private information" },
  { value: "other", label: "Other problem" },
];

const LABELS: readonly CandidateLabel[] = ["A", "B", "C", "D", "E", "F", "G", "H"];
const PREFIX = "arbiter.draft.";
const MAX_AGE_MS = 14 * 24 * 3600 * 1000;

export function isCandidateLabel(value: unknown): value is CandidateLabel {
  return typeof value === "string" && (LABELS as readonly string[]).includes(value);
}

/** The assignment's candidate labels in the order shown. */
export function candidateLabels(assignment: Assignment): CandidateLabel[] {
  return assignment.candidates.map((candidate) => candidate.label).filter(isCandidateLabel);
}

export function emptyDraft(assignment: Assignment, idempotencyKey: string): Draft {
  return {
    choice: null,
    bothBad: false,
    ranking: candidateLabels(assignment),
    ratings: {},
    thumbs: null,
    rewrite: null,
    comment: "",
    flags: [],
    idempotencyKey,
  };
}

/**
 * The saved draft for this assignment, keeping only what still fits it (the project may have
 * changed its scale or aspects since); else an empty one. `restored` says a saved one was found.
 */
export function loadDraft(assignment: Assignment, newKey: () => string): { draft: Draft; restored: boolean } {
  const saved = readStorage(PREFIX + assignment.id) as { draft?: Partial<Record<keyof Draft, unknown>> } | null;
  const empty = emptyDraft(assignment, "");
  if (typeof saved?.draft !== "object" || saved.draft === null) {
    return { draft: { ...empty, idempotencyKey: newKey() }, restored: false };
  }
  const d = saved.draft;
  const labels = candidateLabels(assignment);
  const flags = Array.isArray(d.flags) ? d.flags : [];
  const draft: Draft = {
    choice: assignment.scale.some((point) => point.value === d.choice) ? (d.choice as number) : null,
    bothBad: d.bothBad === true && assignment.allow_both_bad,
    ranking: isPermutation(d.ranking, labels) ? d.ranking : empty.ranking,
    ratings: cleanRatings(d.ratings, labels, ["overall", ...assignment.rating_aspects]),
    thumbs: d.thumbs === "up" || d.thumbs === "down" ? d.thumbs : null,
    rewrite: cleanRewrite(d.rewrite, labels),
    comment: typeof d.comment === "string" ? d.comment : "",
    flags: FLAGS.map((f) => f.value).filter((flag) => flags.includes(flag)),
    idempotencyKey: typeof d.idempotencyKey === "string" && d.idempotencyKey ? d.idempotencyKey : newKey(),
  };
  return { draft, restored: true };
}

export function saveDraft(assignmentId: number, draft: Draft): void {
  writeStorage(PREFIX + assignmentId, { savedAt: Date.now(), draft });
}

export function clearDraft(assignmentId: number): void {
  try {
    localStorage.removeItem(PREFIX + assignmentId);
  } catch {
    // Storage can be disabled (private mode, policy); nothing to clear then.
  }
}

// A live chat's unsent message, per session; pruned with the drafts (same prefix).
const messageKey = (sessionId: number) => `${PREFIX}message.${sessionId}`;

export function loadMessageDraft(sessionId: number): string {
  const saved = readStorage(messageKey(sessionId)) as { draft?: unknown } | null;
  return typeof saved?.draft === "string" ? saved.draft : "";
}

export function saveMessageDraft(sessionId: number, text: string): void {
  if (text) writeStorage(messageKey(sessionId), { savedAt: Date.now(), draft: text });
  else clearMessageDraft(sessionId);
}

export function clearMessageDraft(sessionId: number): void {
  try {
    localStorage.removeItem(messageKey(sessionId));
  } catch {
    // See clearDraft.
  }
}

/** Forget drafts of assignments that have long expired, so storage does not grow forever. */
export function pruneDrafts(now = Date.now()): void {
  try {
    for (const key of Object.keys(localStorage)) {
      if (!key.startsWith(PREFIX)) continue;
      const saved = readStorage(key) as { savedAt?: unknown } | null;
      if (typeof saved?.savedAt !== "number" || now - saved.savedAt > MAX_AGE_MS) localStorage.removeItem(key);
    }
  } catch {
    // See clearDraft.
  }
}

function readStorage(key: string): unknown {
  try {
    const text = localStorage.getItem(key);
    return text ? JSON.parse(text) : null;
  } catch {
    return null;
  }
}

function writeStorage(key: string, value: unknown): void {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // Full or disabled storage: the draft lives only in memory, as before drafts existed.
  }
}

function isPermutation(value: unknown, labels: CandidateLabel[]): value is CandidateLabel[] {
  return (
    Array.isArray(value) &&
    value.length === labels.length &&
    labels.every((label) => value.includes(label))
  );
}

function cleanRatings(value: unknown, labels: CandidateLabel[], names: string[]): Draft["ratings"] {
  if (typeof value !== "object" || value === null) return {};
  const result: Draft["ratings"] = {};
  for (const label of labels) {
    const scores = (value as Record<string, unknown>)[label];
    if (typeof scores !== "object" || scores === null) continue;
    for (const name of names) {
      const score = (scores as Record<string, unknown>)[name];
      if (typeof score === "number" && Number.isInteger(score) && score >= 1 && score <= 5) {
        result[label] = { ...result[label], [name]: score };
      }
    }
  }
  return result;
}

function cleanRewrite(value: unknown, labels: CandidateLabel[]): Draft["rewrite"] {
  if (typeof value !== "object" || value === null) return null;
  const { label, content } = value as { label?: unknown; content?: unknown };
  if (!isCandidateLabel(label) || !labels.includes(label) || typeof content !== "string") return null;
  return { label, content };
}
