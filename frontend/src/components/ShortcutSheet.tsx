export function ShortcutSheet({ scaleLength, onClose }: { scaleLength: number; onClose: () => void }) {
  const lastDigit = Math.min(scaleLength, 9);
  return (
    <section className="shortcut-sheet" aria-labelledby="shortcut-heading">
      <h2 id="shortcut-heading">Keyboard shortcuts</h2>
      <dl>
        <dt>
          <kbd>1</kbd>–<kbd>{lastDigit}</kbd>
        </dt>
        <dd>Choose a point on the scale</dd>
        <dt>
          <kbd>←</kbd> <kbd>→</kbd>
        </dt>
        <dd>Move along the scale (when it has focus)</dd>
        <dt>
          <kbd>Enter</kbd>
        </dt>
        <dd>Submit your choice</dd>
        <dt>
          <kbd>?</kbd>
        </dt>
        <dd>Show or hide this list</dd>
      </dl>
      <p className="hint">Shortcuts are off while you type in the comment box.</p>
      <button type="button" onClick={onClose}>
        Close
      </button>
    </section>
  );
}
