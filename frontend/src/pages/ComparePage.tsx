import { useCallback, useEffect, useRef, useState } from "react";
import { api, ApiError, errorMessage } from "../api";
import type { Assignment } from "../api/types";
import { JudgeForm } from "./JudgeForm";

type Queue =
  | { status: "loading" }
  | { status: "failed"; message: string }
  | { status: "empty" }
  | { status: "ready"; assignment: Assignment };

interface ComparePageProps {
  /** Called when the server says the session is gone (403), so the app can re-check who is logged in. */
  onAuthProblem: () => void;
}

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
      setQueue({ status: "failed", message: errorMessage(error) });
      if (error instanceof ApiError && error.isAuthProblem) onAuthProblem();
    }
  }, [onAuthProblem]);

  useEffect(() => {
    void loadNext();
  }, [loadNext]);

  const onJudged = useCallback((next: Assignment | null) => {
    setJudgedCount((count) => count + 1);
    latestRequest.current += 1; // a load still in flight must not replace this pair
    setQueue(next ? { status: "ready", assignment: next } : { status: "empty" });
  }, []);

  return (
    <main className="page">
      <p className="progress" aria-live="polite">
        Judged this session: {judgedCount}
      </p>
      {queue.status === "loading" && <p className="status">Loading the next pair…</p>}
      {queue.status === "failed" && (
        <div className="status">
          <p role="alert" className="error">
            Could not load the next pair: {queue.message}
          </p>
          <button type="button" onClick={() => void loadNext()}>
            Try again
          </button>
        </div>
      )}
      {queue.status === "empty" && (
        <div className="status">
          <h1>No more pairs to judge right now</h1>
          <p>New pairs may arrive later.</p>
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
          onLoadNext={() => void loadNext()}
          onAuthProblem={onAuthProblem}
        />
      )}
    </main>
  );
}
