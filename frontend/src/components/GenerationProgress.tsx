interface GenerationProgressProps {
  /** What is being generated, for the bar's accessible name. */
  name: string;
  done: number;
  failed: number;
  total: number;
}

const percent = (part: number, total: number) => (total > 0 ? (100 * part) / total : 0);

export function progressText(done: number, failed: number, total: number): string {
  if (total === 0) return "Nothing generated yet";
  const share = Math.floor(percent(done, total));
  return `${done} of ${total} generated (${share}%)${failed ? `, ${failed} failed` : ""}`;
}

/** One bar: the done share, then the failed share in red, of the round's total completions. */
export function GenerationProgress({ name, done, failed, total }: GenerationProgressProps) {
  const text = progressText(done, failed, total);
  return (
    <div className="generation">
      <div
        className="progress-bar"
        role="progressbar"
        aria-label={`Generation of ${name}`}
        aria-valuemin={0}
        aria-valuemax={Math.max(total, 1)}
        aria-valuenow={done + failed}
        aria-valuetext={text}
      >
        <span className="progress-done" style={{ width: `${percent(done, total)}%` }} />
        <span className="progress-failed" style={{ width: `${percent(failed, total)}%` }} />
      </div>
      <p className="progress-text">{text}</p>
    </div>
  );
}
