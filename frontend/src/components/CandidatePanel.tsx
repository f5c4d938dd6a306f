import type { Candidate } from "../api/types";

export function CandidatePanel({ candidate }: { candidate: Candidate }) {
  const headingId = `candidate-${candidate.label}-heading`;
  return (
    // tabIndex: a long response scrolls inside the panel, so keyboard users must be able to focus it.
    <section
      className="candidate"
      data-testid={`candidate-${candidate.label}`}
      aria-labelledby={headingId}
      tabIndex={0}
    >
      <h2 id={headingId}>Response {candidate.label}</h2>
      <div className="plain-text">{candidate.content}</div>
    </section>
  );
}
