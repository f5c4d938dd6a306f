/** True when keys pressed on `target` are text being typed, so shortcuts must stay out. */
export function isTextEntry(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false;
  return target.isContentEditable || target.closest("textarea, input, select") !== null;
}

/** Whether a global shortcut should ignore this key press. */
export function shouldIgnoreShortcut(event: KeyboardEvent): boolean {
  return event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || isTextEntry(event.target);
}
