import type { ReactNode } from "react";
import type { Assignment } from "../api/types";

interface Shortcut {
  keys: ReactNode;
  action: string;
}

function shortcutsFor(assignment: Assignment): Shortcut[] {
  switch (assignment.interface) {
    case "pairwise":
      return [
        {
          keys: (
            <>
              <kbd>1</kbd>–<kbd>{Math.min(assignment.scale.length, 9)}</kbd>
            </>
          ),
          action: "Choose a point on the scale",
        },
        {
          keys: (
            <>
              <kbd>←</kbd> <kbd>→</kbd>
            </>
          ),
          action: "Move along the scale (when it has focus)",
        },
      ];
    case "ranking":
      return [
        { keys: <><kbd>↑</kbd> <kbd>↓</kbd></>, action: "Go to the response above or below" },
        { keys: <><kbd>Alt</kbd>+<kbd>↑</kbd> <kbd>Alt</kbd>+<kbd>↓</kbd></>, action: "Move the focused response up or down" },
        { keys: <kbd>Space</kbd>, action: "Pick up or drop the focused response (then ↑ ↓ Home End move it)" },
        { keys: <kbd>Esc</kbd>, action: "Put a picked-up response back" },
        { keys: <><kbd>1</kbd>–<kbd>{assignment.candidates.length}</kbd></>, action: "Move the focused response to that rank" },
      ];
    case "rating":
      return [
        { keys: <kbd>Tab</kbd>, action: "Go to the next rating" },
        { keys: <><kbd>1</kbd>–<kbd>5</kbd></>, action: "Rate (when a rating has focus); arrows move within it" },
      ];
    case "thumbs":
      return [
        { keys: <kbd>1</kbd>, action: "Thumbs up" },
        { keys: <kbd>2</kbd>, action: "Thumbs down" },
        { keys: <kbd>E</kbd>, action: "Edit the response (write an improved reply)" },
      ];
  }
}

export function ShortcutSheet({ assignment, onClose }: { assignment: Assignment; onClose: () => void }) {
  const shortcuts: Shortcut[] = [
    ...shortcutsFor(assignment),
    { keys: <kbd>Enter</kbd>, action: "Submit and go to the next task" },
    { keys: <kbd>?</kbd>, action: "Show or hide this list" },
  ];
  return (
    <section className="shortcut-sheet" aria-labelledby="shortcut-heading">
      <h2 id="shortcut-heading">Keyboard shortcuts</h2>
      <dl>
        {shortcuts.map((shortcut) => (
          <div key={shortcut.action} className="shortcut">
            <dt>{shortcut.keys}</dt>
            <dd>{shortcut.action}</dd>
          </div>
        ))}
      </dl>
      <p className="hint">Shortcuts are off while you type in a text box.</p>
      <button type="button" onClick={onClose}>
        Close
      </button>
    </section>
  );
}
