import { useLayoutEffect, useRef } from "react";

// Inputs that take no typed text: keys pressed on them may still be shortcuts.
const NON_TEXT_INPUTS = new Set(["radio", "checkbox", "button", "submit", "reset", "range", "color", "file"]);

/** True when keys pressed on `target` are text being typed, so shortcuts must stay out. */
export function isTextEntry(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  if (target.isContentEditable || target.closest("textarea, select") !== null) return true;
  return target instanceof HTMLInputElement && !NON_TEXT_INPUTS.has(target.type);
}

/** Whether a global shortcut should ignore this key press. */
export function shouldIgnoreShortcut(event: KeyboardEvent): boolean {
  return event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || isTextEntry(event.target);
}

/** Enter on a link, a summary or an ordinary button already activates it; don't also submit. */
export function activatesNatively(target: EventTarget | null): boolean {
  return target instanceof Element && target.closest('a, summary, button:not([role="radio"])') !== null;
}

/** Listens to key presses on the whole page, always calling the newest `handler`. */
export function useDocumentKeys(handler: (event: KeyboardEvent) => void): void {
  // Updated before paint: two keys typed within one frame must see each other's effect.
  const latest = useRef(handler);
  useLayoutEffect(() => {
    latest.current = handler;
  });
  // A layout effect: listening from the moment the page is painted, so no early key is lost.
  useLayoutEffect(() => {
    const listener = (event: KeyboardEvent) => latest.current(event);
    document.addEventListener("keydown", listener);
    return () => document.removeEventListener("keydown", listener);
  }, []);
}
