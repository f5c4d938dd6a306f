import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { api, ApiError, errorMessage, newIdempotencyKey, type FieldErrors } from "../api";
import type { Assignment } from "../api/types";
import { CandidatePanel } from "../components/CandidatePanel";
import { Conversation } from "../components/Conversation";
import { FieldError } from "../components/FieldError";
import { Scale } from "../components/Scale";
import { ShortcutSheet } from "../components/ShortcutSheet";
import { shouldIgnoreShortcut } from "../keyboard";

interface Failure {
  message: string;
  fieldErrors: FieldErrors;
  /** The assignment can no longer be judged (expired or already judged). */
  gone: boolean;
}

interface JudgeFormProps {
  assignment: Assignment;
  onJudged: (next: Assignment | null) => void;
  onLoadNext: () => void;
  onAuthProblem: () => void;
}

/** One pair to judge. Mounted per assignment (keyed by id), so all state here is per pair. */
export function JudgeForm({ assignment, onJudged, onLoadNext, onAuthProblem }: JudgeFormProps) {
  const [choice, setChoice] = useState<number | null>(null);
  const [comment, setComment] = useState("");
  const [saving, setSaving] = useState(false);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [showShortcuts, setShowShortcuts] = useState(false);
  // One key per assignment, reused on retry, so a repeated submit stores one judgment.
  const [idempotencyKey] = useState(newIdempotencyKey);
  const shownAt = useRef(0);
  // A ref, not state: a second click can arrive before React re-renders the disabled button.
  const inFlight = useRef(false);

  useEffect(() => {
    shownAt.current = performance.now();
  }, []);

  useEffect(() => {
    function onKeyDown(event: KeyboardEvent) {
      if (shouldIgnoreShortcut(event)) return;
      if (event.key === "?") {
        event.preventDefault();
        setShowShortcuts((shown) => !shown);
      } else if (event.key === "Escape") {
        setShowShortcuts(false);
      }
    }
    document.addEventListener("keydown", onKeyDown);
    return () => document.removeEventListener("keydown", onKeyDown);
  }, []);

  const submit = useCallback(async () => {
    if (inFlight.current) return;
    if (choice === null) {
      setFailure({ message: "Choose a point on the scale first.", fieldErrors: {}, gone: false });
      return;
    }
    inFlight.current = true;
    setSaving(true);
    setFailure(null);
    try {
      const { next } = await api.submitAndNext(assignment.id, {
        choice,
        idempotency_key: idempotencyKey,
        time_spent_ms: Math.max(0, Math.round(performance.now() - shownAt.current)),
        comment: comment.trim(),
      });
      onJudged(next);
    } catch (error) {
      inFlight.current = false;
      setSaving(false);
      setFailure(failureFrom(error));
      if (error instanceof ApiError && error.isAuthProblem) onAuthProblem();
    }
  }, [assignment.id, choice, comment, idempotencyKey, onJudged, onAuthProblem]);

  function onFormSubmit(event: FormEvent) {
    event.preventDefault();
    void submit();
  }

  const fieldErrors = failure?.fieldErrors ?? {};
  const otherFieldMessages = Object.entries(fieldErrors)
    .filter(([field]) => field !== "choice" && field !== "comment")
    .flatMap(([, messages]) => messages);
  const { project } = assignment;

  return (
    <form className="judge" onSubmit={onFormSubmit} aria-labelledby="judge-heading" noValidate>
      <p className="project-name">{project.name}</p>
      <h1 id="judge-heading">Which response is better?</h1>
      {project.guidelines && (
        <details className="guidelines">
          <summary>Guidelines</summary>
          <div className="plain-text">{project.guidelines}</div>
        </details>
      )}

      <Conversation messages={assignment.prompt} />

      <div className="candidates">
        {assignment.candidates.map((candidate) => (
          <CandidatePanel key={candidate.label} candidate={candidate} />
        ))}
      </div>

      <fieldset className="choice" disabled={saving}>
        <legend>Your judgment</legend>
        <Scale
          points={assignment.scale}
          value={choice}
          onChange={setChoice}
          onSubmit={() => void submit()}
          disabled={saving}
          describedBy={fieldErrors.choice ? "choice-error" : undefined}
        />
        <FieldError id="choice-error" messages={fieldErrors.choice} />

        <label htmlFor="comment">Comment (optional)</label>
        <textarea
          id="comment"
          value={comment}
          rows={2}
          onChange={(event) => setComment(event.target.value)}
          aria-invalid={fieldErrors.comment ? true : undefined}
          aria-describedby={fieldErrors.comment ? "comment-error" : undefined}
        />
        <FieldError id="comment-error" messages={fieldErrors.comment} />
      </fieldset>

      <div className="submit-row">
        <button type="submit" className="primary" disabled={choice === null || saving} aria-busy={saving}>
          {saving ? "Saving…" : "Submit"}
        </button>
        <button type="button" className="link-button" onClick={() => setShowShortcuts((shown) => !shown)}>
          Keyboard shortcuts (?)
        </button>
      </div>
      {failure && (
        <div className="error">
          <p role="alert">{[failure.message, ...otherFieldMessages].join(" ")}</p>
          {failure.gone && (
            <button type="button" onClick={onLoadNext}>
              Load the next pair
            </button>
          )}
        </div>
      )}

      {showShortcuts && (
        <ShortcutSheet scaleLength={assignment.scale.length} onClose={() => setShowShortcuts(false)} />
      )}
    </form>
  );
}

function failureFrom(error: unknown): Failure {
  if (error instanceof ApiError) {
    // 409: expired or already judged; 404: no longer yours. Either way only a new pair helps.
    const gone = error.status === 409 || error.status === 404;
    return { message: error.message, fieldErrors: error.fieldErrors, gone };
  }
  return { message: errorMessage(error), fieldErrors: {}, gone: false };
}
