import { useCallback, useEffect, useRef, useState, type FormEvent } from "react";
import { api, ApiError, errorMessage, newIdempotencyKey, type FieldErrors } from "../api";
import type { Assignment } from "../api/types";
import { answerFrom } from "../annotation/answer";
import { candidateLabels, clearDraft, loadDraft, saveDraft, type Draft } from "../annotation/draft";
import { CandidatePanel } from "../components/CandidatePanel";
import { Conversation } from "../components/Conversation";
import { FieldError } from "../components/FieldError";
import { JudgmentExtras } from "../components/JudgmentExtras";
import { Ranking } from "../components/Ranking";
import { RatingInput } from "../components/RatingInput";
import { Scale } from "../components/Scale";
import { ShortcutSheet } from "../components/ShortcutSheet";
import { SkipForm } from "../components/SkipForm";
import { ThumbsInput } from "../components/ThumbsInput";
import { activatesNatively, shouldIgnoreShortcut, useDocumentKeys } from "../keyboard";

interface Failure {
  message: string;
  fieldErrors: FieldErrors;
  /** The assignment can no longer be judged (expired or already judged). */
  gone: boolean;
}

interface JudgeFormProps {
  assignment: Assignment;
  onJudged: (next: Assignment | null) => void;
  onSkipped: (next: Assignment | null) => void;
  onLoadNext: () => void;
  onAuthProblem: () => void;
}

const HEADINGS: Record<Assignment["interface"], string> = {
  pairwise: "Which response is better?",
  ranking: "Rank the responses from best to worst",
  rating: "Rate each response",
  thumbs: "Is this response good?",
};

// Fields each interface shows next to their control; errors on other fields go by Submit.
const SHOWN_FIELDS: Record<Assignment["interface"], string[]> = {
  pairwise: ["choice", "both_bad"],
  ranking: ["ranking"],
  rating: ["ratings"],
  thumbs: ["thumbs", "rewrite"],
};

/** One task to judge. Mounted per assignment (keyed by id), so all state here is per task. */
export function JudgeForm({ assignment, onJudged, onSkipped, onLoadNext, onAuthProblem }: JudgeFormProps) {
  const [{ draft: initialDraft, restored }] = useState(() => loadDraft(assignment, newIdempotencyKey));
  const [draft, setDraft] = useState<Draft>(initialDraft);
  const [saving, setSaving] = useState(false);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [showShortcuts, setShowShortcuts] = useState(false);
  const shownAt = useRef(0);
  // A ref, not state: a second click can arrive before React re-renders the disabled button.
  const inFlight = useRef(false);
  const edited = useRef(false);

  useEffect(() => {
    shownAt.current = performance.now();
  }, []);

  // Unsent work survives a reload: every change is kept on this device until it is sent.
  useEffect(() => {
    if (edited.current) saveDraft(assignment.id, draft);
  }, [assignment.id, draft]);

  const update = useCallback((change: Partial<Draft>) => {
    edited.current = true;
    setDraft((previous) => ({ ...previous, ...change }));
  }, []);

  const submit = useCallback(async () => {
    if (inFlight.current) return;
    const answer = answerFrom(assignment, draft, performance.now() - shownAt.current);
    if (!answer.ok) {
      setFailure({ message: answer.message, fieldErrors: {}, gone: false });
      return;
    }
    inFlight.current = true;
    setSaving(true);
    setFailure(null);
    try {
      const { next } = await api.submitAndNext(assignment.id, answer.request);
      edited.current = false;
      clearDraft(assignment.id);
      onJudged(next);
    } catch (error) {
      inFlight.current = false;
      setSaving(false);
      setFailure(failureFrom(error));
      if (error instanceof ApiError && error.isAuthProblem) onAuthProblem();
    }
  }, [assignment, draft, onJudged, onAuthProblem]);

  useDocumentKeys((event) => {
    if (shouldIgnoreShortcut(event)) return;
    if (event.key === "?") {
      event.preventDefault();
      setShowShortcuts((shown) => !shown);
    } else if (event.key === "Escape") {
      setShowShortcuts(false);
    } else if (event.key === "Enter" && assignment.interface !== "pairwise" && !activatesNatively(event.target)) {
      // The pairwise scale handles its own Enter.
      event.preventDefault();
      void submit();
    }
  });

  function onFormSubmit(event: FormEvent) {
    event.preventDefault();
    void submit();
  }

  function skipped(next: Assignment | null) {
    edited.current = false;
    clearDraft(assignment.id);
    onSkipped(next);
  }

  const fieldErrors = failure?.fieldErrors ?? {};
  const shown = new Set([...SHOWN_FIELDS[assignment.interface], "comment", "flags"]);
  const otherFieldMessages = Object.entries(fieldErrors)
    .filter(([field]) => !shown.has(field))
    .flatMap(([, messages]) => messages);
  const pending = answerFrom(assignment, draft, 0);
  const { project } = assignment;

  return (
    <form
      className={`judge judge-${assignment.interface}`}
      onSubmit={onFormSubmit}
      aria-labelledby="judge-heading"
      noValidate
    >
      <p className="project-name">{project.name}</p>
      <h1 id="judge-heading">{HEADINGS[assignment.interface]}</h1>
      {restored && (
        <p className="notice" role="status">
          Your unsent work on this task was restored from this device.
        </p>
      )}
      {project.guidelines && (
        <details className="guidelines">
          <summary>Guidelines (version {assignment.guidelines_version})</summary>
          <div className="plain-text">{project.guidelines}</div>
        </details>
      )}

      <Conversation messages={assignment.prompt} />

      <InterfaceControls
        assignment={assignment}
        draft={draft}
        update={update}
        saving={saving}
        fieldErrors={fieldErrors}
        onSubmit={() => void submit()}
      />

      <fieldset className="extras-fieldset" disabled={saving}>
        <legend className="visually-hidden">Flags and comment</legend>
        <JudgmentExtras
          comment={draft.comment}
          onCommentChange={(comment) => update({ comment })}
          flags={draft.flags}
          onFlagsChange={(flags) => update({ flags })}
          fieldErrors={fieldErrors}
        />
      </fieldset>

      <div className="submit-row">
        <button
          type="submit"
          className="primary"
          disabled={!pending.ok || saving}
          aria-busy={saving}
          aria-describedby={!pending.ok ? "submit-hint" : undefined}
        >
          {saving ? "Saving…" : "Submit"}
        </button>
        {!pending.ok && (
          <span id="submit-hint" className="hint">
            {pending.message}
          </span>
        )}
        <button type="button" className="link-button" onClick={() => setShowShortcuts((s) => !s)}>
          Keyboard shortcuts (?)
        </button>
      </div>
      {failure && (
        <div className="error">
          <p role="alert">{[failure.message, ...otherFieldMessages].join(" ")}</p>
          {failure.gone && (
            <button type="button" onClick={onLoadNext}>
              Load the next task
            </button>
          )}
        </div>
      )}

      {showShortcuts && <ShortcutSheet assignment={assignment} onClose={() => setShowShortcuts(false)} />}

      <SkipForm
        assignmentId={assignment.id}
        disabled={saving}
        onSkipped={skipped}
        onAuthProblem={onAuthProblem}
      />
    </form>
  );
}

interface ControlsProps {
  assignment: Assignment;
  draft: Draft;
  update: (change: Partial<Draft>) => void;
  saving: boolean;
  fieldErrors: FieldErrors;
  onSubmit: () => void;
}

/** The candidates and the controls that differ between interfaces. */
function InterfaceControls({ assignment, draft, update, saving, fieldErrors, onSubmit }: ControlsProps) {
  const { candidates } = assignment;
  switch (assignment.interface) {
    case "pairwise":
      return (
        <>
          <div className="candidates">
            {candidates.map((candidate) => (
              <CandidatePanel key={candidate.label} candidate={candidate} />
            ))}
          </div>
          <fieldset className="choice" disabled={saving}>
            <legend>Your judgment</legend>
            <Scale
              points={assignment.scale}
              value={draft.bothBad ? null : draft.choice}
              onChange={(choice) => update({ choice, bothBad: false })}
              onSubmit={onSubmit}
              disabled={saving}
              describedBy={fieldErrors.choice ? "choice-error" : undefined}
            />
            <FieldError id="choice-error" messages={fieldErrors.choice} />
            {assignment.allow_both_bad && (
              <label className="both-bad">
                <input
                  type="checkbox"
                  checked={draft.bothBad}
                  onChange={(event) => update({ bothBad: event.target.checked, choice: null })}
                  aria-describedby={fieldErrors.both_bad ? "both-bad-error" : undefined}
                />
                Both responses are bad
              </label>
            )}
            <FieldError id="both-bad-error" messages={fieldErrors.both_bad} />
          </fieldset>
        </>
      );
    case "ranking":
      return (
        <>
          <div className="candidates">
            {candidates.map((candidate) => (
              <CandidatePanel key={candidate.label} candidate={candidate} />
            ))}
          </div>
          <fieldset className="choice" disabled={saving}>
            <legend>Your ranking</legend>
            <Ranking
              candidates={candidates}
              order={draft.ranking}
              onChange={(ranking) => update({ ranking })}
              disabled={saving}
              describedBy={fieldErrors.ranking ? "ranking-error" : undefined}
            />
            <FieldError id="ranking-error" messages={fieldErrors.ranking} />
          </fieldset>
        </>
      );
    case "rating":
      return (
        <>
          <div className="candidates">
            {candidates.map((candidate) => (
              <CandidatePanel key={candidate.label} candidate={candidate}>
                <RatingInput
                  label={candidate.label}
                  rubric={assignment.rating_rubric}
                  aspects={assignment.rating_aspects}
                  value={draft.ratings[candidate.label] ?? {}}
                  onChange={(name, score) =>
                    update({
                      ratings: { ...draft.ratings, [candidate.label]: { ...draft.ratings[candidate.label], [name]: score } },
                    })
                  }
                  disabled={saving}
                />
              </CandidatePanel>
            ))}
          </div>
          <FieldError id="ratings-error" messages={fieldErrors.ratings} />
        </>
      );
    case "thumbs": {
      const candidate = candidates[0];
      const label = candidateLabels(assignment)[0];
      if (!candidate || !label) return <p className="error">This task has no response to judge.</p>;
      return (
        <div className="candidates single">
          <CandidatePanel candidate={candidate}>
            <ThumbsInput
              candidate={candidate}
              value={draft.thumbs}
              onChange={(thumbs) => update({ thumbs })}
              rewrite={draft.rewrite?.content ?? null}
              onRewriteChange={(content) =>
                update({ rewrite: content === null ? null : { label, content } })
              }
              disabled={saving}
              rewriteErrors={fieldErrors.rewrite}
            />
            <FieldError id="thumbs-error" messages={fieldErrors.thumbs} />
          </CandidatePanel>
        </div>
      );
    }
  }
}

function failureFrom(error: unknown): Failure {
  if (error instanceof ApiError) {
    // 409: expired or already judged; 404: no longer yours. Either way only a new task helps.
    const gone = error.status === 409 || error.status === 404;
    return { message: describeApiError(error), fieldErrors: error.fieldErrors, gone };
  }
  return { message: errorMessage(error), fieldErrors: {}, gone: false };
}

/** The server's words, plus what it means for the annotator's work when the server failed. */
export function describeApiError(error: ApiError): string {
  if (error.status >= 500) {
    return (
      `The server had a problem and did not save this (HTTP ${error.status}). ` +
      "Nothing you entered is lost: it is kept on this device. Try again in a moment."
    );
  }
  return error.message;
}
