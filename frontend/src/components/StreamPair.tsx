import { CandidatePanel } from "./CandidatePanel";

/** Where one streamed reply is: still being written, complete, or cut off before its end. */
export type StreamState = "writing" | "finished" | "length" | "cut";

export interface StreamedCandidate {
  label: string;
  content: string;
  state: StreamState;
}

const STATE_WORDS: Record<StreamState, string> = {
  writing: "Writing…",
  finished: "Finished",
  length: "Finished (reached the length limit)",
  cut: "Stopped before the end",
};

/**
 * The live turn's replies side by side (stacked on a phone) as they stream in, each rendered
 * as sanitised Markdown. Screen readers hear each reply's state change, not every word.
 */
export function StreamPair({ candidates }: { candidates: StreamedCandidate[] }) {
  return (
    <div className="candidates stream-pair">
      {candidates.map((candidate) => (
        <CandidatePanel key={candidate.label} candidate={candidate}>
          <p
            className={`stream-state stream-${candidate.state}`}
            role="status"
            data-testid={`stream-state-${candidate.label}`}
          >
            <span className="visually-hidden">Response {candidate.label}: </span>
            {STATE_WORDS[candidate.state]}
          </p>
        </CandidatePanel>
      ))}
    </div>
  );
}

/** The state a `done` event leaves a reply in. */
export function stateAfterDone(finishReason: string, incomplete: boolean): StreamState {
  if (incomplete) return "cut";
  return finishReason === "length" ? "length" : "finished";
}
