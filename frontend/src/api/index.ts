import { request } from "./client";
import type {
  Judgment,
  JudgmentRequest,
  LoginRequest,
  Me,
  ModelVersion,
  NextAssignment,
  ProjectSummary,
  QualityReport,
  Round,
  RoundCreateRequest,
  Session,
  SessionSummary,
  SkipRequest,
  SubmitAndNext,
} from "./types";

export { ApiError, errorMessage } from "./client";
export type { FieldErrors } from "./client";

const project = (slug: string) => `/api/v1/projects/${encodeURIComponent(slug)}`;

export const api = {
  me: () => request<Me>("GET", "/api/v1/auth/me/"),
  login: (credentials: LoginRequest) => request<Me>("POST", "/api/v1/auth/login/", credentials),
  logout: () => request<void>("POST", "/api/v1/auth/logout/"),
  nextAssignment: () => request<NextAssignment>("GET", "/api/v1/assignments/next/"),
  /** One round trip per annotation: stores the judgment and hands back the next task. */
  submitAndNext: (assignmentId: number, judgment: JudgmentRequest) =>
    request<SubmitAndNext>("POST", `/api/v1/assignments/${assignmentId}/submit-and-next/`, judgment),
  skip: (assignmentId: number, body: SkipRequest) =>
    request<NextAssignment>("POST", `/api/v1/assignments/${assignmentId}/skip/`, body),
  /** Stores a judgment only (a live turn's: the session, not the queue, goes on from it). */
  judge: (assignmentId: number, judgment: JudgmentRequest) =>
    request<Judgment>("POST", `/api/v1/assignments/${assignmentId}/judgment/`, judgment),

  sessions: (slug: string) => request<SessionSummary[]>("GET", `${project(slug)}/sessions/`),
  startSession: (slug: string, candidatesPerTurn = 2) =>
    request<Session>("POST", `${project(slug)}/sessions/`, { candidates_per_turn: candidatesPerTurn }),
  session: (sessionId: number) => request<Session>("GET", `/api/v1/sessions/${sessionId}/`),
  sendMessage: (sessionId: number, content: string) =>
    request<Session>("POST", `/api/v1/sessions/${sessionId}/turns/`, { content }),
  endSession: (sessionId: number) => request<Session>("POST", `/api/v1/sessions/${sessionId}/end/`),

  projects: () => request<ProjectSummary[]>("GET", "/api/v1/projects/"),
  modelVersions: () => request<ModelVersion[]>("GET", "/api/v1/model-versions/"),
  rounds: (slug: string) => request<Round[]>("GET", `${project(slug)}/rounds/`),
  round: (slug: string, roundId: number) => request<Round>("GET", `${project(slug)}/rounds/${roundId}/`),
  createRound: (slug: string, body: RoundCreateRequest) => request<Round>("POST", `${project(slug)}/rounds/`, body),
  startRound: (slug: string, roundId: number) => request<Round>("POST", `${project(slug)}/rounds/${roundId}/start/`),
  quality: (slug: string) => request<QualityReport>("GET", `${project(slug)}/quality/`),
};

/** A fresh idempotency key; crypto.randomUUID only exists in secure contexts (https/localhost). */
export function newIdempotencyKey(): string {
  if (typeof crypto.randomUUID === "function") return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6]! & 0x0f) | 0x40; // version 4
  bytes[8] = (bytes[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
