import type { ReactNode } from "react";
import type { Candidate } from "../api/types";
import { CompletionText } from "./CompletionText";

interface CandidatePanelProps {
  candidate: Candidate;
  /** Controls shown under the response (a rating, thumbs). */
  children?: ReactNode;
}

export function CandidatePanel({ candidate, children }: CandidatePanelProps) {
  const headingId = `candidate-${candidate.label}-heading`;
  return (
    <section className="candidate" data-testid={`candidate-${candidate.label}`} aria-labelledby={headingId}>
      <h2 id={headingId}>Response {candidate.label}</h2>
      {/* tabIndex: a long response scrolls inside its box, so keyboard users must be able to focus it. */}
      <div className="candidate-body" tabIndex={0} role="region" aria-label={`Text of response ${candidate.label}`}>
        <CompletionText text={candidate.content} label={candidate.label} />
      </div>
      {children}
    </section>
  );
}
