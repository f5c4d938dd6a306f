import { useEffect, useRef } from "react";
import type { Candidate, Thumbs } from "../api/types";
import { shouldIgnoreShortcut, useDocumentKeys } from "../keyboard";
import { FieldError } from "./FieldError";

interface ThumbsInputProps {
  candidate: Candidate;
  value: Thumbs | null;
  onChange: (value: Thumbs) => void;
  /** The rewrite being written, or null when no edit is open. */
  rewrite: string | null;
  onRewriteChange: (content: string | null) => void;
  disabled?: boolean;
  rewriteErrors?: string[];
}

const CHOICES: { value: Thumbs; key: string; text: string; icon: string }[] = [
  { value: "up", key: "1", text: "Good response", icon: "✓" },
  { value: "down", key: "2", text: "Bad response", icon: "✗" },
];

/**
 * Thumbs up or down on one response, and an editor for an improved reply. Keys: 1 up,
 * 2 down, E opens the editor (focused, starting from the response's text).
 */
export function ThumbsInput(props: ThumbsInputProps) {
  const { candidate, value, onChange, rewrite, onRewriteChange, disabled = false, rewriteErrors } = props;
  const editor = useRef<HTMLTextAreaElement>(null);
  const editing = rewrite !== null;
  const openedByUser = useRef(false);

  useEffect(() => {
    if (editing && openedByUser.current) editor.current?.focus();
    openedByUser.current = false;
  }, [editing]);

  function openEditor() {
    openedByUser.current = true;
    onRewriteChange(candidate.content);
  }

  useDocumentKeys((event) => {
    if (disabled || shouldIgnoreShortcut(event)) return;
    const choice = CHOICES.find((c) => c.key === event.key);
    if (choice) {
      event.preventDefault();
      onChange(choice.value);
    } else if ((event.key === "e" || event.key === "E") && !editing) {
      event.preventDefault();
      openEditor();
    }
  });

  return (
    <div className="thumbs">
      <div className="thumbs-choices" role="radiogroup" aria-label={`Is response ${candidate.label} good?`}>
        {CHOICES.map((choice) => (
          <button
            key={choice.value}
            type="button"
            role="radio"
            aria-checked={value === choice.value}
            className="thumbs-choice"
            disabled={disabled}
            onClick={() => onChange(choice.value)}
          >
            <kbd aria-hidden="true">{choice.key}</kbd>
            <span aria-hidden="true">{choice.icon}</span> {choice.text}
          </button>
        ))}
      </div>
      {editing ? (
        <div className="rewrite">
          <label htmlFor="rewrite">Your improved response {candidate.label}</label>
          <p className="hint" id="rewrite-hint">
            Stored with your judgment as a better reply. Leave it unchanged to send no rewrite.
          </p>
          <textarea
            id="rewrite"
            ref={editor}
            rows={10}
            value={rewrite}
            disabled={disabled}
            onChange={(event) => onRewriteChange(event.target.value)}
            aria-invalid={rewriteErrors?.length ? true : undefined}
            aria-describedby={rewriteErrors?.length ? "rewrite-hint rewrite-error" : "rewrite-hint"}
          />
          <FieldError id="rewrite-error" messages={rewriteErrors} />
          <button type="button" disabled={disabled} onClick={() => onRewriteChange(null)}>
            Discard edit
          </button>
        </div>
      ) : (
        <button type="button" className="edit-button" disabled={disabled} onClick={openEditor}>
          <kbd aria-hidden="true">E</kbd> Edit response {candidate.label}
        </button>
      )}
    </div>
  );
}
