import type { FieldErrors } from "../api";
import type { Flag } from "../api/types";
import { FLAGS } from "../annotation/draft";
import { FieldError } from "./FieldError";

interface JudgmentExtrasProps {
  comment: string;
  onCommentChange: (comment: string) => void;
  flags: Flag[];
  onFlagsChange: (flags: Flag[]) => void;
  fieldErrors: FieldErrors;
}

/** Comment and problem flags: offered with every kind of judgment. */
export function JudgmentExtras({ comment, onCommentChange, flags, onFlagsChange, fieldErrors }: JudgmentExtrasProps) {
  function toggle(flag: Flag, on: boolean) {
    const next = on ? [...flags, flag] : flags.filter((f) => f !== flag);
    onFlagsChange(FLAGS.map((f) => f.value).filter((f) => next.includes(f)));
  }

  return (
    <div className="extras">
      <fieldset
        className="flags"
        aria-invalid={fieldErrors.flags ? true : undefined}
        aria-describedby={fieldErrors.flags ? "flags-error" : undefined}
      >
        <legend>Flag a problem (optional)</legend>
        {FLAGS.map((flag) => (
          <label key={flag.value} className="flag">
            <input
              type="checkbox"
              checked={flags.includes(flag.value)}
              onChange={(event) => toggle(flag.value, event.target.checked)}
            />
            {flag.label}
          </label>
        ))}
      </fieldset>
      <FieldError id="flags-error" messages={fieldErrors.flags} />

      <label htmlFor="comment">Comment (optional)</label>
      <textarea
        id="comment"
        value={comment}
        rows={2}
        onChange={(event) => onCommentChange(event.target.value)}
        aria-invalid={fieldErrors.comment ? true : undefined}
        aria-describedby={fieldErrors.comment ? "comment-error" : undefined}
      />
      <FieldError id="comment-error" messages={fieldErrors.comment} />
    </div>
  );
}
