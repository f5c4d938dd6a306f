import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, errorMessage } from "../api";
import type { Assignment } from "../api/types";
import { pruneDrafts } from "../annotation/draft";
import { JudgeForm } from "./JudgeForm";

type Queue =
  | { status: "loading" }
  | { status: "failed"; error: unknown }
  | { status: "empty" }
  | { status: "ready"; assignment: Assignment };

interface ComparePageProps {
  /** Called when the server says the session is gone (403), so the app can re-check who is logged in. */
  onAuthProblem: () => void;
}

/** The annotator's queue: one task at a time, whatever its interface. */
export function ComparePage({ onAuthProblem }: ComparePageProps) {
  const [queue, setQueue] = useState<Queue>({ status: "loading" });
  const [judgedCount, setJudgedCount] = useState(0);
  const latestRequest = useRef(0);

  const loadNext = useCallback(async () => {
    // Only the newest request may update the page (a reload clicked twice, StrictMode re-runs).
    const requestId = ++latestRequest.current;
    setQueue({ status: "loading" });
    try {
      const { assignment } = await api.nextAssignment();
      if (requestId !== latestRequest.current) return;
      setQueue(assignment ? { status: "ready", assignment } : { status: "empty" });
    } catch (error) {
      if (requestId !== latestRequest.current) return;
      setQueue({ status: "failed", error });
      if (error instanceof ApiError && error.isAuthProblem) onAuthProblem();
    }
  }, [onAuthProblem]);

  useEffect(() => {
    pruneDrafts();
    void loadNext();
  }, [loadNext]);

  const showNext = useCallback((next: Assignment | null) => {
    latestRequest.current += 1; // a load still in flight must not replace this task
    setQueue(next ? { status: "ready", assignment: next } : { status: "empty" });
  }, []);

  const onJudged = useCallback(
    (next: Assignment | null) => {
      setJudgedCount((count) => count + 1);
      showNext(next);
    },
    [showNext],
  );

  return (
    <main className="page">
      <p className="progress" aria-live="polite">
        Judged this session: {judgedCount}
      </p>
      {queue.status === "loading" && <p className="status">Loading the next task…</p>}
      {queue.status === "failed" && (
        <div className="status">
          <h1>Could not load the next task</h1>
          <p role="alert" className="error">
            {loadFailureText(queue.error)}
          </p>
          <button type="button" onClick={() => void loadNext()}>
            Try again
          </button>
        </div>
      )}
      {queue.status === "empty" && (
        <div className="status">
          <h1>No more tasks to judge right now</h1>
          <p>No more pairs, rankings, ratings or replies are waiting for you. New ones may arrive later.</p>
          <button type="button" onClick={() => void loadNext()}>
            Reload
          </button>
        </div>
      )}
      {queue.status === "ready" && (
        <JudgeForm
          key={queue.assignment.id}
          assignment={queue.assignment}
          onJudged={onJudged}
          onSkipped={showNext}
          onLoadNext={() => void loadNext()}
          onAuthProblem={onAuthProblem}
        />
      )}
    </main>
  );
}

function loadFailureText(error: unknown): string {
  if (error instanceof ApiError && error.status >= 500) {
    return `The server had a problem (HTTP ${error.status}): ${error.message} This is not your fault; try again in a moment.`;
  }
  return errorMessage(error);
}
