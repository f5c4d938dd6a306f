import { useEffect, useState } from "react";
import { api, ApiError, errorMessage } from "../../api";
import type { AnnotatorQuality, QualityReport } from "../../api/types";
import { MetricBars } from "../../components/MetricBars";

const percent = (value: number) => `${Math.round(value * 100)}%`;
const decimal = (value: number) => value.toFixed(2);
const perHour = (value: number) => value.toFixed(1);
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const show = (value: number | null, format: (value: number) => string) => (value === null ? "—" : format(value));

type NumberKey = { [K in keyof AnnotatorQuality]: AnnotatorQuality[K] extends number | null ? K : never }[keyof AnnotatorQuality];

interface Plot {
  key: NumberKey;
  title: string;
  note: string;
  format: (value: number) => string;
  max?: number;
  reference?: number;
}

// The per-annotator plots the issue asks for: throughput, gold accuracy, agreement, position and length bias.
const PLOTS: Plot[] = [
  { key: "judgments_per_hour", title: "Throughput", note: "judgments per hour", format: perHour },
  { key: "gold_accuracy", title: "Gold accuracy", note: "share of gold items right; higher is better", format: percent, max: 1 },
  {
    key: "agreement_with_others",
    title: "Agreement",
    note: "share of shared tasks matching the other annotators' majority",
    format: percent,
    max: 1,
  },
  {
    key: "self_consistency",
    title: "Self-consistency",
    note: "same answer when a pair is asked again swapped",
    format: percent,
    max: 1,
  },
  {
    key: "position_a_rate",
    title: "Position bias",
    note: "share of decided pairs won by the response shown first; 50% (dashed) is unbiased",
    format: percent,
    max: 1,
    reference: 0.5,
  },
  {
    key: "longer_wins_rate",
    title: "Length bias",
    note: "share of decided pairs won by the longer response; 50% (dashed) is unbiased",
    format: percent,
    max: 1,
    reference: 0.5,
  },
];

interface QualityPageProps {
  slug: string;
  onAuthProblem: () => void;
}

export function QualityPage({ slug, onAuthProblem }: QualityPageProps) {
  const [report, setReport] = useState<QualityReport | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => {
    let current = true;
    setReport(null);
    setError(null);
    api.quality(slug).then(
      (found) => current && setReport(found),
      (caught: unknown) => {
        if (!current) return;
        setError(errorMessage(caught));
        if (caught instanceof ApiError && caught.isAuthProblem) onAuthProblem();
      },
    );
    return () => {
      current = false;
    };
  }, [slug, attempt, onAuthProblem]);

  if (error) {
    return (
      <div className="status">
        <p role="alert" className="error">
          Could not load the quality report: {error}
        </p>
        <button type="button" onClick={() => setAttempt((n) => n + 1)}>
          Try again
        </button>
      </div>
    );
  }
  if (!report) return <p>Loading the quality report…</p>;

  const { project, annotators } = report;
  return (
    <div className="quality">
      <section aria-labelledby="project-quality-heading">
        <h2 id="project-quality-heading">Whole project</h2>
        <dl className="stats">
          <Stat term="Judgments" value={String(project.n_judgments)} />
          <Stat term="Gold judgments" value={String(project.n_gold)} />
          <Stat term="Gold accuracy" value={show(project.gold_accuracy, percent)} />
          <Stat term="Krippendorff's α" value={show(project.krippendorff_alpha, decimal)} />
          <Stat term="Fleiss' κ" value={show(project.fleiss_kappa, decimal)} />
          <Stat term="Cohen's κ" value={show(project.cohen_kappa, decimal)} />
          <Stat term="Position bias (first shown wins)" value={show(project.position_a_rate, percent)} />
          <Stat term="Length bias (longer wins)" value={show(project.longer_wins_rate, percent)} />
          <Stat term="Ties" value={show(project.tie_rate, percent)} />
          <Stat term="Mean time per judgment" value={show(project.mean_time_ms, seconds)} />
        </dl>
      </section>

      <section aria-labelledby="annotator-quality-heading">
        <h2 id="annotator-quality-heading">Per annotator</h2>
        {annotators.length === 0 ? (
          <p>No judgments yet, so there is nothing to plot.</p>
        ) : (
          <>
            <div className="charts">
              {PLOTS.map((plot) => (
                <MetricBars
                  key={plot.key}
                  title={plot.title}
                  note={plot.note}
                  rows={annotators.map((a) => ({ name: a.annotator, value: a[plot.key] }))}
                  max={plot.max}
                  reference={plot.reference}
                  format={plot.format}
                />
              ))}
            </div>
            <AnnotatorTable annotators={annotators} />
          </>
        )}
      </section>
    </div>
  );
}

function Stat({ term, value }: { term: string; value: string }) {
  return (
    <div className="stat">
      <dt>{term}</dt>
      <dd>{value}</dd>
    </div>
  );
}

function AnnotatorTable({ annotators }: { annotators: AnnotatorQuality[] }) {
  return (
    // A wide table scrolls sideways on a phone; focusable so the keyboard can scroll it.
    <div className="table-scroll" tabIndex={0} role="region" aria-labelledby="annotator-table-caption">
      <table className="data-table">
        <caption id="annotator-table-caption">Per-annotator numbers</caption>
        <thead>
          <tr>
            <th scope="col">Annotator</th>
            <th scope="col">Judgments</th>
            <th scope="col">Per hour</th>
            <th scope="col">Mean time</th>
            <th scope="col">Gold accuracy (n)</th>
            <th scope="col">Agreement (shared tasks)</th>
            <th scope="col">Self-consistency (re-asks)</th>
            <th scope="col">First shown wins</th>
            <th scope="col">Longer wins</th>
            <th scope="col">Ties</th>
          </tr>
        </thead>
        <tbody>
          {annotators.map((a) => (
            <tr key={a.annotator_id}>
              <th scope="row">{a.annotator}</th>
              <td>{a.n_judgments}</td>
              <td>{show(a.judgments_per_hour, perHour)}</td>
              <td>{show(a.mean_time_ms, seconds)}</td>
              <td>
                {show(a.gold_accuracy, percent)} ({a.n_gold})
              </td>
              <td>
                {show(a.agreement_with_others, percent)} ({a.n_shared_tasks})
              </td>
              <td>
                {show(a.self_consistency, percent)} ({a.n_reask_pairs})
              </td>
              <td>{show(a.position_a_rate, percent)}</td>
              <td>{show(a.longer_wins_rate, percent)}</td>
              <td>{show(a.tie_rate, percent)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
