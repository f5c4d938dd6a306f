import { useEffect, useState, type ReactNode } from "react";
import { ApiError, errorMessage, type FieldErrors } from "../../api";
import type { TrainingJobKind } from "../../api/types";
import { FieldError } from "../../components/FieldError";

/** How often running exports and training jobs are fetched again. */
export const POLL_MS = 2000;

export interface Loaded<T> {
  data: T | null;
  setData: (update: (previous: T | null) => T | null) => void;
  error: string | null;
  retry: () => void;
}

/**
 * Loads once per `load` identity (memoise it on what it depends on) and again on retry();
 * an auth failure also tells the app, which then shows the login page.
 */
export function useLoad<T>(load: () => Promise<T>, onAuthProblem: () => void): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let current = true;
    setError(null);
    load().then(
      (found) => current && setData(found),
      (caught: unknown) => {
        if (!current) return;
        setError(errorMessage(caught));
        if (caught instanceof ApiError && caught.isAuthProblem) onAuthProblem();
      },
    );
    return () => {
      current = false;
    };
  }, [load, attempt, onAuthProblem]);

  return { data, setData, error, retry: () => setAttempt((n) => n + 1) };
}

/** A load failure in words, with a way to try again. */
export function LoadError({ what, error, retry }: { what: string; error: string; retry: () => void }) {
  return (
    <div className="status">
      <p role="alert" className="error">
        Could not load {what}: {error}
      </p>
      <button type="button" onClick={retry}>
        Try again
      </button>
    </div>
  );
}

/** An element id for a field name, which may be dotted (`rules.min_strength`). */
export const fieldId = (prefix: string, field: string) => `${prefix}-${field.replace(/[^A-Za-z0-9_-]/g, "-")}`;

/** Props that mark a control invalid and point it at its message. */
export function invalidProps(id: string, messages: string[] | undefined) {
  return messages?.length ? { "aria-invalid": true as const, "aria-describedby": `${id}-error` } : {};
}

interface FieldProps {
  /** The control's id; its message gets `${id}-error`. */
  id: string;
  label: ReactNode;
  hint?: ReactNode;
  messages: string[] | undefined;
  /** Renders the control with the props it needs for its label and message. */
  children: (props: { id: string; "aria-invalid"?: true; "aria-describedby"?: string }) => ReactNode;
}

/** A label, a control and the server's words about that control right under it. */
export function Field({ id, label, hint, messages, children }: FieldProps) {
  return (
    <div className="field">
      <label htmlFor={id}>
        {label} {hint && <span className="hint">{hint}</span>}
      </label>
      {children({ id, ...invalidProps(id, messages) })}
      <FieldError id={`${id}-error`} messages={messages} />
    </div>
  );
}

/** The server's summary plus the messages of fields the form does not show. */
export function formMessage(detail: string, errors: FieldErrors, shown: (field: string) => boolean): string {
  const extra = Object.entries(errors)
    .filter(([field]) => !shown(field))
    .flatMap(([field, messages]) => messages.map((message) => `${field}: ${message}`));
  return [detail, ...extra].join(" ");
}

/** A form's outcome under its submit row: the error in words, or what was done. */
export function FormOutcome({ error, notice }: { error?: string | null; notice?: string | null }) {
  return (
    <>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {notice && (
        <p role="status" className="notice">
          {notice}
        </p>
      )}
    </>
  );
}

/** The field errors of a failure (none for a network error or a refusal without fields). */
export const fieldErrorsOf = (error: unknown): FieldErrors => (error instanceof ApiError ? error.fieldErrors : {});

/** Whether an error's field name is `field` or nested in it (`config.dpo.beta` is in `config.dpo`). */
export const isUnder = (name: string, field: string) => name === field || name.startsWith(`${field}.`);

/**
 * The messages for one control standing for `field` and whatever is nested in it; a nested
 * message says which part it is about: `config.dpo.beta` under `config.dpo` reads "beta: …".
 */
export function messagesUnder(errors: FieldErrors, field: string): string[] | undefined {
  const found = Object.entries(errors).flatMap(([name, messages]) =>
    name === field
      ? messages
      : isUnder(name, field)
        ? messages.map((message) => `${name.slice(field.length + 1)}: ${message}`)
        : [],
  );
  return found.length ? found : undefined;
}

/** Training job kinds in the order triggers train them: the reward model first. */
export const JOB_KINDS: readonly TrainingJobKind[] = ["reward_model", "dpo"];
export const KIND_TEXT: Record<TrainingJobKind, string> = { dpo: "DPO policy", reward_model: "Reward model" };

/**
 * Recipe overrides typed as a JSON object: `{}` when left empty, `{ error }` when the text is
 * not an object. Which settings a kind takes is the server's to say (it names the setting).
 */
export function parseOverrides(text: string): { value?: Record<string, unknown>; error?: string } {
  if (!text.trim()) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { error: 'Enter a JSON object, e.g. {"beta": 0.1}.' };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { error: 'Enter a JSON object in braces, e.g. {"beta": 0.1}.' };
  }
  return { value: parsed as Record<string, unknown> };
}

/** "1 h 30 min" from seconds, for hints next to second-valued inputs. */
export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds <= 0) return "";
  const h = Math.floor(seconds / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = Math.round(seconds % 60);
  const parts = [h && `${h} h`, m && `${m} min`, s && `${s} s`].filter(Boolean);
  return parts.join(" ");
}

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString() : "—");

interface ProgressProps {
  label: string;
  done: number;
  total: number;
  /** What the numbers count, for the words read out: "steps", "judgments". */
  unit: string;
}

/** A plain progress bar: done of total, in words for screen readers as well. */
export function ProgressBar({ label, done, total, unit }: ProgressProps) {
  const share = total > 0 ? Math.min(1, done / total) : 0;
  const text = total > 0 ? `${done} of ${total} ${unit} (${Math.floor(share * 100)}%)` : `waiting to start`;
  return (
    <div>
      <div
        className="progress-bar"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={Math.max(total, 1)}
        aria-valuenow={Math.min(done, Math.max(total, 1))}
        aria-valuetext={text}
      >
        <div className="progress-done" style={{ width: `${share * 100}%` }} />
      </div>
      <p className="progress-text">{text}</p>
    </div>
  );
}
