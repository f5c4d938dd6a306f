import { useRef, type KeyboardEvent as ReactKeyboardEvent } from "react";
import type { ScalePoint } from "../api/types";
import { activatesNatively, shouldIgnoreShortcut, useDocumentKeys } from "../keyboard";

interface ScaleProps {
  points: ScalePoint[];
  value: number | null;
  onChange: (value: number) => void;
  onSubmit: () => void;
  disabled?: boolean;
  /** id of an element describing the group (e.g. a field error). */
  describedBy?: string;
}

/**
 * The preference scale as an ARIA radio group of buttons, rendered from the server's points.
 * Page-wide keys: 1..N pick the N-th point, Enter submits.
 */
export function Scale({ points, value, onChange, onSubmit, disabled = false, describedBy }: ScaleProps) {
  const buttons = useRef<(HTMLButtonElement | null)[]>([]);
  const selectedIndex = points.findIndex((point) => point.value === value);

  useDocumentKeys((event) => {
    if (disabled || shouldIgnoreShortcut(event)) return;
    if (/^[1-9]$/.test(event.key)) {
      const point = points[Number(event.key) - 1];
      if (point) {
        event.preventDefault();
        onChange(point.value);
      }
    } else if (event.key === "Enter" && !activatesNatively(event.target)) {
      event.preventDefault();
      onSubmit();
    }
  });

  function moveSelection(event: ReactKeyboardEvent) {
    const step = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1 }[event.key];
    if (step === undefined || disabled) return;
    event.preventDefault();
    const from = selectedIndex === -1 ? (step > 0 ? -1 : 0) : selectedIndex;
    const index = (from + step + points.length) % points.length;
    onChange(points[index]!.value);
    buttons.current[index]?.focus();
  }

  return (
    <div
      className="scale"
      role="radiogroup"
      aria-label="Which response is better"
      aria-describedby={describedBy}
      onKeyDown={moveSelection}
    >
      {points.map((point, index) => {
        const checked = index === selectedIndex;
        // Roving tab stop: the group is one Tab stop, arrows move within it.
        const tabbable = checked || (selectedIndex === -1 && index === 0);
        return (
          <button
            key={point.value}
            ref={(element) => {
              buttons.current[index] = element;
            }}
            type="button"
            role="radio"
            aria-checked={checked}
            aria-label={point.label}
            tabIndex={tabbable ? 0 : -1}
            disabled={disabled}
            className="scale-point"
            onClick={() => onChange(point.value)}
          >
            {index < 9 && (
              <kbd className="scale-key" aria-hidden="true">
                {index + 1}
              </kbd>
            )}
            <span>{point.label}</span>
          </button>
        );
      })}
    </div>
  );
}
