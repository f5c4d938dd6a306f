import { useState } from "react";
import { api, ApiError, errorMessage, type FieldErrors } from "../api";
import type { Assignment } from "../api/types";
import { FieldError } from "./FieldError";

const REASONS = [
  "I don't know enough about this topic",
  "The prompt is unclear or broken",
  "The responses did not load or are empty",
  "I'd rather not judge this content",
];
const OTHER = "Other";

interface SkipFormProps {
  assignmentId: number;
  disabled?: boolean;
  onSkipped: (next: Assignment | null) => void;
  onAuthProblem: () => void;
}

/** "Skip this task" with a required reason; the server answers with the next task. */
export function SkipForm({ assignmentId, disabled = false, onSkipped, onAuthProblem }: SkipFormProps) {
  const [open, setOpen] = useState(false);
  const [choice, setChoice] = useState(REASONS[0]!);
  const [other, setOther] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<{ message: string; fields: FieldErrors } | null>(null);

  if (!open) {
    return (
      <button type="button" className="link-button skip-open" disabled={disabled} onClick={() => setOpen(true)}>
        Skip this task…
      </button>
    );
  }

  async function skip() {
    const reason = choice === OTHER ? other.trim() : choice;
    if (!reason) {
      setError({ message: "Say why you skip this task.", fields: { reason: ["Say why you skip this task."] } });
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const { assignment } = await api.skip(assignmentId, { reason });
      onSkipped(assignment);
    } catch (caught) {
      setBusy(false);
      setError({ message: errorMessage(caught), fields: caught instanceof ApiError ? caught.fieldErrors : {} });
      if (caught instanceof ApiError && caught.isAuthProblem) onAuthProblem();
    }
  }

  const reasonErrors = error?.fields.reason;
  return (
    // Not a <form>: it sits inside the judgment form, and forms cannot nest.
    <div className="skip" role="group" aria-labelledby="skip-heading">
      <h2 id="skip-heading">Skip this task</h2>
      <label htmlFor="skip-reason">Why skip it?</label>
      <select
        id="skip-reason"
        value={choice}
        onChange={(event) => setChoice(event.target.value)}
        disabled={busy}
        aria-invalid={reasonErrors && choice !== OTHER ? true : undefined}
        aria-describedby={reasonErrors && choice !== OTHER ? "skip-reason-error" : undefined}
      >
        {[...REASONS, OTHER].map((reason) => (
          <option key={reason}>{reason}</option>
        ))}
      </select>
      {choice === OTHER && (
        <>
          <label htmlFor="skip-other">Your reason</label>
          <input
            id="skip-other"
            value={other}
            maxLength={500}
            disabled={busy}
            onChange={(event) => setOther(event.target.value)}
            onKeyDown={(event) => {
              // Enter here must skip, not submit the judgment form around it.
              if (event.key === "Enter") {
                event.preventDefault();
                void skip();
              }
            }}
            aria-invalid={reasonErrors ? true : undefined}
            aria-describedby={reasonErrors ? "skip-reason-error" : undefined}
          />
        </>
      )}
      <FieldError id="skip-reason-error" messages={reasonErrors} />
      {error && !reasonErrors && (
        <p role="alert" className="error">
          Could not skip: {error.message}
        </p>
      )}
      <div className="submit-row">
        <button type="button" onClick={() => void skip()} disabled={busy} aria-busy={busy}>
          {busy ? "Skipping…" : "Skip and go to the next task"}
        </button>
        <button type="button" className="link-button" onClick={() => setOpen(false)} disabled={busy}>
          Cancel
        </button>
      </div>
    </div>
  );
}
