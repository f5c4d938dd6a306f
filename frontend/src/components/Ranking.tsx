import { useLayoutEffect, useRef, useState, type DragEvent, type KeyboardEvent } from "react";
import type { Candidate, CandidateLabel } from "../api/types";

interface RankingProps {
  candidates: Candidate[];
  /** Labels, best first. */
  order: CandidateLabel[];
  onChange: (order: CandidateLabel[]) => void;
  disabled?: boolean;
  describedBy?: string;
}

/** `order` with `label` moved to position `to` (0-based, clamped). */
export function moveTo(order: CandidateLabel[], label: CandidateLabel, to: number): CandidateLabel[] {
  const rest = order.filter((item) => item !== label);
  const index = Math.max(0, Math.min(to, rest.length));
  return [...rest.slice(0, index), label, ...rest.slice(index)];
}

/**
 * K candidates ordered best first. Mouse and touch: drag an item, or its ↑/↓ buttons.
 * Keyboard (one Tab stop, arrows move focus): Alt+↑/↓ moves the focused item; Space picks
 * it up so plain ↑/↓ (Home/End) move it, Space drops, Escape puts it back; digit N moves it
 * to rank N. Every move is announced to screen readers.
 */
export function Ranking({ candidates, order, onChange, disabled = false, describedBy }: RankingProps) {
  const [focused, setFocused] = useState<CandidateLabel | null>(null);
  const [grabbed, setGrabbed] = useState<{ label: CandidateLabel; from: CandidateLabel[] } | null>(null);
  const [dragging, setDragging] = useState<{ label: CandidateLabel; from: CandidateLabel[] } | null>(null);
  const [announcement, setAnnouncement] = useState("");
  const items = useRef(new Map<CandidateLabel, HTMLDivElement>());
  const wantFocus = useRef<CandidateLabel | null>(null);
  const n = order.length;
  const tabStop = focused && order.includes(focused) ? focused : order[0];

  // React moves a reordered item's DOM node, which can drop its focus: give it back.
  useLayoutEffect(() => {
    if (wantFocus.current) items.current.get(wantFocus.current)?.focus();
    wantFocus.current = null;
  });

  const position = (label: CandidateLabel, within = order) => within.indexOf(label) + 1;

  function move(label: CandidateLabel, to: number, verb = "moved to") {
    const next = moveTo(order, label, to);
    wantFocus.current = label;
    if (next.join() !== order.join()) onChange(next);
    setAnnouncement(`Response ${label} ${verb} position ${position(label, next)} of ${n}.`);
  }

  function focusItem(label: CandidateLabel | undefined) {
    if (!label) return;
    setFocused(label);
    items.current.get(label)?.focus();
  }

  function onKeyDown(event: KeyboardEvent, label: CandidateLabel) {
    if (disabled || event.ctrlKey || event.metaKey) return;
    const index = order.indexOf(label);
    const moving = grabbed?.label === label || event.altKey;
    const step = { ArrowUp: -1, ArrowDown: 1, ArrowLeft: -1, ArrowRight: 1 }[event.key];
    let handled = true;
    if (step !== undefined) {
      if (moving) move(label, index + step);
      else focusItem(order[index + step]);
    } else if (event.key === "Home" || event.key === "End") {
      const to = event.key === "Home" ? 0 : n - 1;
      if (moving) move(label, to);
      else focusItem(order[to]);
    } else if (event.key === " ") {
      if (grabbed?.label === label) {
        setGrabbed(null);
        setAnnouncement(`Response ${label} dropped at position ${index + 1} of ${n}.`);
      } else {
        setGrabbed({ label, from: order });
        setAnnouncement(
          `Response ${label} picked up at position ${index + 1} of ${n}. ` +
            "Use the arrow keys to move it, Space to drop it, Escape to cancel.",
        );
      }
    } else if (event.key === "Escape" && grabbed?.label === label) {
      onChange(grabbed.from);
      wantFocus.current = label;
      setGrabbed(null);
      setAnnouncement(`Move cancelled. Response ${label} is back at position ${position(label, grabbed.from)} of ${n}.`);
    } else if (/^[1-9]$/.test(event.key) && Number(event.key) <= n && !event.altKey) {
      move(label, Number(event.key) - 1);
    } else {
      handled = false;
    }
    if (handled) {
      event.preventDefault();
      event.stopPropagation();
    }
  }

  function onDragStart(event: DragEvent, label: CandidateLabel) {
    if (disabled) return;
    event.dataTransfer?.setData("text/plain", label);
    if (event.dataTransfer) event.dataTransfer.effectAllowed = "move";
    setDragging({ label, from: order });
    setAnnouncement(`Dragging response ${label}.`);
  }

  function onDragOver(event: DragEvent, over: CandidateLabel) {
    if (!dragging) return;
    event.preventDefault(); // marks this item as a place to drop
    if (event.dataTransfer) event.dataTransfer.dropEffect = "move";
    if (over !== dragging.label) onChange(moveTo(order, dragging.label, order.indexOf(over)));
  }

  function onDrop(event: DragEvent) {
    if (!dragging) return;
    event.preventDefault();
    setAnnouncement(`Response ${dragging.label} dropped at position ${position(dragging.label)} of ${n}.`);
    setFocused(dragging.label);
    setDragging(null);
  }

  function onDragEnd(event: DragEvent) {
    if (!dragging) return;
    // Dropped outside the list (or Escape during the drag): undo the live preview.
    if (event.dataTransfer?.dropEffect === "none") {
      onChange(dragging.from);
      setAnnouncement(`Move cancelled. Response ${dragging.label} is back where it was.`);
    }
    setDragging(null);
  }

  const byLabel = new Map(candidates.map((candidate) => [candidate.label, candidate]));
  return (
    <div className="ranking">
      <p id="ranking-help" className="hint">
        Best first. Drag a response, or use its arrow buttons. With the keyboard: focus a response, then
        press <kbd>Alt</kbd>+<kbd>↑</kbd>/<kbd>↓</kbd> to move it, or <kbd>Space</kbd> to pick it up, the arrow
        keys to move it and <kbd>Space</kbd> to drop it.
      </p>
      <ol
        className="ranking-list"
        aria-label="Your ranking, best first"
        aria-describedby={describedBy}
        onDragOver={(event) => dragging && event.preventDefault()}
        onDrop={onDrop}
      >
        {order.map((label, index) => {
          const isGrabbed = grabbed?.label === label || dragging?.label === label;
          return (
            <li key={label} className="ranking-item" data-grabbed={isGrabbed || undefined}>
              <div
                ref={(element) => {
                  if (element) items.current.set(label, element);
                  else items.current.delete(label);
                }}
                role="button"
                aria-roledescription="sortable response"
                aria-label={`Response ${label}, rank ${index + 1} of ${n}`}
                aria-describedby="ranking-help"
                aria-pressed={isGrabbed}
                aria-disabled={disabled || undefined}
                tabIndex={label === tabStop ? 0 : -1}
                draggable={!disabled}
                className="ranking-handle"
                data-testid={`rank-item-${label}`}
                onFocus={() => {
                  setFocused(label);
                  if (grabbed && grabbed.label !== label) setGrabbed(null);
                }}
                onBlur={(event) => {
                  // A reordered node can lose focus with no new target; only a real move away drops it.
                  const to = event.relatedTarget;
                  if (grabbed?.label === label && to instanceof Node && !event.currentTarget.closest("ol")?.contains(to)) {
                    setGrabbed(null);
                  }
                }}
                onKeyDown={(event) => onKeyDown(event, label)}
                onDragStart={(event) => onDragStart(event, label)}
                onDragOver={(event) => onDragOver(event, label)}
                onDragEnd={onDragEnd}
              >
                <span className="rank-number" aria-hidden="true">
                  {index + 1}
                </span>
                <span className="grip" aria-hidden="true">
                  ⠿
                </span>
                <span className="rank-label">Response {label}</span>
                <span className="rank-excerpt" aria-hidden="true">
                  {excerpt(byLabel.get(label)?.content ?? "")}
                </span>
              </div>
              <span className="rank-buttons">
                <button
                  type="button"
                  tabIndex={-1}
                  aria-label={`Move response ${label} up`}
                  disabled={disabled || index === 0}
                  onClick={() => move(label, index - 1)}
                >
                  ↑
                </button>
                <button
                  type="button"
                  tabIndex={-1}
                  aria-label={`Move response ${label} down`}
                  disabled={disabled || index === n - 1}
                  onClick={() => move(label, index + 1)}
                >
                  ↓
                </button>
              </span>
            </li>
          );
        })}
      </ol>
      <p className="visually-hidden" aria-live="assertive" aria-atomic="true" data-testid="ranking-announcement">
        {announcement}
      </p>
    </div>
  );
}

function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > 90 ? `${flat.slice(0, 89)}…` : flat;
}
