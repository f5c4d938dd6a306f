import { useCallback, useEffect, useState } from "react";
import { api, ApiError, errorMessage } from "../../api";
import type { ModelVersion, Round, RoundStatus } from "../../api/types";
import { GenerationProgress } from "../../components/GenerationProgress";
import { RoundCreateForm } from "./RoundCreateForm";

/** How often a generating round's progress is fetched. */
export const POLL_MS = 2000;

const STATUS_TEXT: Record<RoundStatus, string> = {
  draft: "Draft",
  generating: "Generating candidates",
  collecting: "Collecting judgments",
  closed: "Closed",
  training: "Training",
  done: "Done",
  failed: "Failed",
};

interface RoundsPageProps {
  slug: string;
  onAuthProblem: () => void;
}

export function RoundsPage({ slug, onAuthProblem }: RoundsPageProps) {
  const [rounds, setRounds] = useState<Round[] | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [versions, setVersions] = useState<ModelVersion[] | null>(null);
  const [versionsError, setVersionsError] = useState<string | null>(null);

  const fail = useCallback(
    (error: unknown, show: (message: string) => void) => {
      show(errorMessage(error));
      if (error instanceof ApiError && error.isAuthProblem) onAuthProblem();
    },
    [onAuthProblem],
  );

  useEffect(() => {
    let current = true;
    setRounds(null);
    setLoadError(null);
    api.rounds(slug).then(
      (found) => current && setRounds(found),
      (error: unknown) => current && fail(error, setLoadError),
    );
    api.modelVersions().then(
      (found) => current && setVersions(found.filter((version) => version.enabled !== false)),
      (error: unknown) => current && fail(error, setVersionsError),
    );
    return () => {
      current = false;
    };
  }, [slug, fail]);

  const replace = useCallback((round: Round) => {
    setRounds((list) => list && list.map((r) => (r.id === round.id ? round : r)));
  }, []);

  const pollError = useGenerationPolling(slug, rounds, replace);
  const labels = new Map(versions?.map((version) => [version.id, version.label]));

  return (
    <div className="rounds">
      <section aria-labelledby="rounds-heading">
        <h2 id="rounds-heading">Rounds</h2>
        {loadError && (
          <p role="alert" className="error">
            Could not load the rounds: {loadError}
          </p>
        )}
        {rounds === null && !loadError && <p>Loading rounds…</p>}
        {rounds?.length === 0 && <p>No rounds yet. Create the first one below.</p>}
        {pollError && (
          <p role="status" className="error">
            Progress could not be refreshed ({pollError}); still trying every {POLL_MS / 1000} seconds.
          </p>
        )}
        {rounds && rounds.length > 0 && (
          <ul className="round-list">
            {rounds.map((round) => (
              <RoundCard key={round.id} slug={slug} round={round} versionLabels={labels} onChanged={replace} />
            ))}
          </ul>
        )}
      </section>
      <RoundCreateForm
        slug={slug}
        versions={versions}
        versionsError={versionsError}
        onCreated={(round) => setRounds((list) => [round, ...(list ?? [])])}
      />
    </div>
  );
}

/**
 * While any round is generating, fetch each such round every POLL_MS and hand it to
 * `onRound`. One fetch at a time: the next is scheduled only after the last answered.
 */
function useGenerationPolling(slug: string, rounds: Round[] | null, onRound: (round: Round) => void): string | null {
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const generating = (rounds ?? []).filter((round) => round.status === "generating").map((round) => round.id);
  const ids = generating.join(",");

  useEffect(() => {
    if (!ids) return;
    let current = true;
    const timer = window.setTimeout(async () => {
      const results = await Promise.allSettled(ids.split(",").map((id) => api.round(slug, Number(id))));
      if (!current) return;
      const failed = results.find((result) => result.status === "rejected");
      setError(failed ? errorMessage(failed.reason) : null);
      for (const result of results) if (result.status === "fulfilled") onRound(result.value);
      setTick((n) => n + 1);
    }, POLL_MS);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [slug, ids, tick, onRound]);

  return ids ? error : null;
}

interface RoundCardProps {
  slug: string;
  round: Round;
  versionLabels: Map<number, string>;
  onChanged: (round: Round) => void;
}

function RoundCard({ slug, round, versionLabels, onChanged }: RoundCardProps) {
  const [starting, setStarting] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const headingId = `round-${round.id}-heading`;
  const errorId = `round-${round.id}-start-error`;

  async function start() {
    setStarting(true);
    setError(null);
    try {
      onChanged(await api.startRound(slug, round.id));
    } catch (caught) {
      setError(errorMessage(caught));
    } finally {
      setStarting(false);
    }
  }

  const versions = round.model_version_ids.map((id) => versionLabels.get(id) ?? `#${id}`).join(", ");
  const sampling = Object.entries(round.sampling_params)
    .map(([name, value]) => `${name} ${String(value)}`)
    .join(", ");
  return (
    <li className="round-card" aria-labelledby={headingId}>
      <div className="round-title">
        <h3 id={headingId}>{round.name}</h3>
        <span className={`badge status-${round.status}`}>{STATUS_TEXT[round.status]}</span>
      </div>
      <p className="hint">
        Created {new Date(round.created_at).toLocaleString()} · {round.candidates_per_prompt} candidates per prompt ·
        versions {versions || "none"}
        {sampling && ` · ${sampling}`}
      </p>
      <GenerationProgress
        name={round.name}
        done={round.generation_done}
        failed={round.generation_failed}
        total={round.generation_total}
      />
      <p className="round-counts">
        {round.tasks} tasks · {round.judgments} judgments
        {round.target_judgments ? ` of ${round.target_judgments} wanted` : ""}
        {round.close_reason && ` · closed: ${round.close_reason}`}
      </p>
      {round.status === "draft" && (
        <div className="submit-row">
          <button
            type="button"
            className="primary"
            onClick={() => void start()}
            disabled={starting}
            aria-busy={starting}
            aria-label={`Start ${round.name}`}
            aria-describedby={error ? errorId : undefined}
          >
            {starting ? "Starting…" : "Start"}
          </button>
          {error && (
            <p id={errorId} role="alert" className="error">
              Could not start: {error}
            </p>
          )}
        </div>
      )}
    </li>
  );
}
