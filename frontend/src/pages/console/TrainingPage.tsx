import { useCallback, useEffect, useState, type FormEvent } from "react";
import { api, ApiError, errorMessage, type FieldErrors } from "../../api";
import { consoleApi } from "../../api/console";
import type {
  TrainingJob,
  TrainingJobConfigRequest,
  TrainingJobCreateRequest,
  TrainingJobKind,
  TrainingJobStatus,
  TrainingJobSummary,
} from "../../api/types";
import { LineCurve, type CurvePoint } from "../../components/LineCurve";
import {
  Field,
  fieldErrorsOf,
  formMessage,
  FormOutcome,
  isUnder,
  KIND_TEXT,
  LoadError,
  messagesUnder,
  parseOverrides,
  POLL_MS,
  ProgressBar,
  useLoad,
  when,
} from "./common";
import { TrainingTriggers } from "./TrainingTriggers";

const STATUS_TEXT: Record<TrainingJobStatus, string> = {
  queued: "Queued",
  running: "Running",
  succeeded: "Succeeded",
  failed: "Failed",
  cancelled: "Cancelled",
};
const STATUS_CLASS: Record<TrainingJobStatus, string> = {
  queued: "status-generating",
  running: "status-training",
  succeeded: "status-done",
  failed: "status-failed",
  cancelled: "",
};
const active = (job: TrainingJobSummary) => job.status === "queued" || job.status === "running";

/** Reward-accuracy keys the recipes log per step: TRL's DPO trainer, then its reward trainer. */
const ACCURACY_KEYS = ["rewards/accuracies", "accuracy"];

/** The per-step values of `key` in a job's metrics history. */
export function curve(history: unknown, key: string): CurvePoint[] {
  if (!Array.isArray(history)) return [];
  const points: CurvePoint[] = [];
  for (const entry of history as Record<string, unknown>[]) {
    const step = entry?.step;
    const value = entry?.[key];
    if (typeof step === "number" && typeof value === "number" && Number.isFinite(value)) points.push({ step, value });
  }
  return points;
}

export function accuracyCurve(history: unknown): { key: string; points: CurvePoint[] } | null {
  for (const key of ACCURACY_KEYS) {
    const points = curve(history, key);
    if (points.length) return { key, points };
  }
  return null;
}

interface TrainingPageProps {
  slug: string;
  onAuthProblem: () => void;
}

/** The project's training jobs, refreshed while any is queued or running. */
export function TrainingPage({ slug, onAuthProblem }: TrainingPageProps) {
  const load = useCallback(async () => (await consoleApi.trainingJobs()).filter((job) => job.project === slug), [slug]);
  const { data: jobs, setData, error, retry } = useLoad(load, onAuthProblem);
  const [versionLabels, setVersionLabels] = useState<Map<number, string>>(new Map());
  const [pollError, setPollError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const anyActive = (jobs ?? []).some(active);

  // Labels of registered versions, fetched again when a job registers one.
  const registered = (jobs ?? []).flatMap((job) => (job.registered_version === null ? [] : [job.registered_version])).join(",");
  useEffect(() => {
    if (!registered) return;
    let current = true;
    api.modelVersions().then(
      (versions) => current && setVersionLabels(new Map(versions.map((v) => [v.id, v.label]))),
      () => undefined, // the id is shown instead
    );
    return () => {
      current = false;
    };
  }, [registered]);

  useEffect(() => {
    if (!anyActive) return;
    let current = true;
    const timer = window.setTimeout(async () => {
      try {
        const fresh = await load();
        if (!current) return;
        setData(() => fresh);
        setPollError(null);
      } catch (caught) {
        if (current) setPollError(errorMessage(caught));
      }
      if (current) setTick((n) => n + 1);
    }, POLL_MS);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [anyActive, tick, load, setData]);

  const replace = (job: TrainingJobSummary) => setData((list) => list && list.map((j) => (j.id === job.id ? job : j)));

  /** Fetch the list again now (a job was started here, or a trigger may have started some). */
  const refresh = useCallback(async () => {
    try {
      const fresh = await load();
      setData(() => fresh);
      setPollError(null);
    } catch (caught) {
      setPollError(errorMessage(caught));
    }
  }, [load, setData]);

  const started = (job: TrainingJob) => {
    setData((list) => [job, ...(list ?? []).filter((j) => j.id !== job.id)]);
    void refresh();
  };

  return (
    <>
      <div className="console-columns">
        <section aria-labelledby="training-heading">
          <h2 id="training-heading">Training jobs</h2>
          {error && <LoadError what="the training jobs" error={error} retry={retry} />}
          {!error && !jobs && <p>Loading the training jobs…</p>}
          {jobs?.length === 0 && (
            <p>
              No training jobs yet. Start one here, add a trigger below, or let a round that trains on close start a
              reward model and a DPO policy when it closes.
            </p>
          )}
          {anyActive && pollError && (
            <p role="status" className="error">
              Status could not be refreshed ({pollError}); still trying every {POLL_MS / 1000} seconds.
            </p>
          )}
          {jobs && jobs.length > 0 && (
            <ul className="round-list">
              {jobs.map((job, index) => (
                <JobCard key={job.id} job={job} versionLabels={versionLabels} initiallyOpen={index === 0} onChanged={replace} />
              ))}
            </ul>
          )}
        </section>
        <StartJobForm slug={slug} onStarted={started} onAuthProblem={onAuthProblem} />
      </div>
      <TrainingTriggers slug={slug} onAuthProblem={onAuthProblem} onChecked={() => void refresh()} />
    </>
  );
}

const OVERRIDE_EXAMPLE: Record<TrainingJobKind, string> = {
  dpo: '{"beta": 0.1, "max_steps": 200}',
  reward_model: '{"num_train_epochs": 1, "learning_rate": 0.00001}',
};

interface StartJobFormProps {
  slug: string;
  onStarted: (job: TrainingJob) => void;
  onAuthProblem: () => void;
}

/** Start one job by hand on all of the project's judgments, with optional recipe overrides. */
export function StartJobForm({ slug, onStarted, onAuthProblem }: StartJobFormProps) {
  const [kind, setKind] = useState<TrainingJobKind>("dpo");
  const [config, setConfig] = useState("");
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<string | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setMessage(null);
    setCreated(null);
    const overrides = parseOverrides(config);
    if (overrides.error) {
      setErrors({ config: [overrides.error] });
      setMessage("The recipe overrides need fixing first; see the message next to them.");
      return;
    }
    setErrors({});
    const body: TrainingJobCreateRequest = { project: slug, kind };
    if (overrides.value) body.config = overrides.value as TrainingJobConfigRequest;
    setBusy(true);
    try {
      const job = await consoleApi.createTrainingJob(body);
      setConfig("");
      setCreated(`${KIND_TEXT[job.kind]} job ${job.id} is ${job.status}; it shows in the list.`);
      onStarted(job);
    } catch (caught) {
      if (caught instanceof ApiError && caught.isAuthProblem) onAuthProblem();
      const fields = fieldErrorsOf(caught);
      setErrors(fields);
      setMessage(formMessage(errorMessage(caught), fields, (field) => field === "kind" || isUnder(field, "config")));
    } finally {
      setBusy(false);
    }
  }

  return (
    <form className="console-form" onSubmit={onSubmit} noValidate aria-labelledby="start-job-heading">
      <h2 id="start-job-heading">Start a training job</h2>
      <p className="hint">Trains on all of this project's judgments so far; the worker's recipe defaults apply to what you leave out.</p>
      <Field id="start-job-kind" label="Kind" messages={messagesUnder(errors, "kind")}>
        {(props) => (
          <select {...props} value={kind} onChange={(e) => setKind(e.target.value as TrainingJobKind)}>
            <option value="dpo">{KIND_TEXT.dpo}</option>
            <option value="reward_model">{KIND_TEXT.reward_model}</option>
          </select>
        )}
      </Field>
      <Field
        id="start-job-config"
        label="Recipe overrides"
        hint={`(optional JSON, e.g. ${OVERRIDE_EXAMPLE[kind]})`}
        messages={messagesUnder(errors, "config")}
      >
        {(props) => <textarea {...props} rows={4} spellCheck={false} value={config} onChange={(e) => setConfig(e.target.value)} />}
      </Field>
      <FormOutcome error={message} notice={created} />
      <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
        {busy ? "Starting…" : "Start job"}
      </button>
    </form>
  );
}

interface JobCardProps {
  job: TrainingJobSummary;
  versionLabels: Map<number, string>;
  initiallyOpen: boolean;
  onChanged: (job: TrainingJobSummary) => void;
}

function JobCard({ job, versionLabels, initiallyOpen, onChanged }: JobCardProps) {
  const [open, setOpen] = useState(initiallyOpen);
  const [cancelling, setCancelling] = useState(false);
  const [cancelError, setCancelError] = useState<string | null>(null);
  const title = `${KIND_TEXT[job.kind]} job ${job.id}`;
  const headingId = `job-${job.id}-heading`;
  const detailId = `job-${job.id}-detail`;
  const cancelErrorId = `job-${job.id}-cancel-error`;

  async function cancel() {
    setCancelling(true);
    setCancelError(null);
    try {
      onChanged(await consoleApi.cancelTrainingJob(job.id));
    } catch (caught) {
      setCancelError(errorMessage(caught));
    } finally {
      setCancelling(false);
    }
  }

  const version = job.registered_version;
  return (
    <li className="round-card" aria-labelledby={headingId}>
      <div className="round-title">
        <h3 id={headingId}>{title}</h3>
        <span className={`badge ${STATUS_CLASS[job.status]}`}>{STATUS_TEXT[job.status]}</span>
      </div>
      <p className="hint">
        Created {when(job.created_at)}
        {job.round !== null && ` · round ${job.round}`}
        {job.data_rows !== null && ` · ${job.data_rows} training rows`}
        {job.judgment_count !== null && ` from ${job.judgment_count} judgments`}
        {job.finished_at && ` · finished ${when(job.finished_at)}`}
      </p>
      <ProgressBar label={`Progress of ${title}`} done={job.progress_step} total={job.progress_total} unit="steps" />
      {version !== null && (
        <p className="round-counts">
          Registered as model version <strong>{versionLabels.get(version) ?? `#${version}`}</strong>
        </p>
      )}
      {job.error && <p className="error">{job.error}</p>}
      <div className="submit-row">
        <button type="button" aria-expanded={open} aria-controls={detailId} onClick={() => setOpen((shown) => !shown)}>
          {open ? "Hide curves" : "Show curves"}
        </button>
        {active(job) && (
          <button
            type="button"
            onClick={() => void cancel()}
            disabled={cancelling}
            aria-busy={cancelling}
            aria-label={`Cancel ${title}`}
            aria-describedby={cancelError ? cancelErrorId : undefined}
          >
            {cancelling ? "Cancelling…" : "Cancel"}
          </button>
        )}
        {cancelError && (
          <p id={cancelErrorId} role="alert" className="error">
            Could not cancel: {cancelError}
          </p>
        )}
      </div>
      {open && <JobDetail id={detailId} job={job} />}
    </li>
  );
}

/** Curves and final numbers; fetched again whenever the list shows the job moved on. */
function JobDetail({ id, job }: { id: string; job: TrainingJobSummary }) {
  const [detail, setDetail] = useState<TrainingJob | null>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    let current = true;
    consoleApi.trainingJob(job.id).then(
      (found) => {
        if (!current) return;
        setDetail(found);
        setError(null);
      },
      (caught: unknown) => current && setError(errorMessage(caught)),
    );
    return () => {
      current = false;
    };
  }, [job.id, job.status, job.progress_step, job.heartbeat_at]);

  if (error && !detail) return <p id={id} className="error">Could not load the curves: {error}</p>;
  if (!detail) return <p id={id}>Loading the curves…</p>;
  const loss = curve(detail.metrics_history, "loss");
  const accuracy = accuracyCurve(detail.metrics_history);
  const numbers = Object.entries((detail.metrics ?? {}) as Record<string, unknown>).filter(
    (entry): entry is [string, number] => typeof entry[1] === "number",
  );
  return (
    <div id={id} className="job-detail">
      {loss.length === 0 && !accuracy && <p>No steps logged yet.</p>}
      <div className="charts">
        {loss.length > 0 && <LineCurve title="Loss" note="per logged step; lower is better" points={loss} format={(v) => v.toFixed(3)} />}
        {accuracy && (
          <LineCurve
            title="Reward accuracy"
            note="share of pairs where the chosen reply scores higher"
            points={accuracy.points}
            format={(v) => `${Math.round(v * 100)}%`}
            domain={[0, 1]}
          />
        )}
      </div>
      {numbers.length > 0 && (
        <dl className="stats compact">
          {numbers.map(([name, value]) => (
            <div className="stat" key={name}>
              <dt>{name.replaceAll("_", " ")}</dt>
              <dd>{Number.isInteger(value) ? value : value.toFixed(4)}</dd>
            </div>
          ))}
        </dl>
      )}
      {detail.log_tail && (
        <details>
          <summary>Log (last lines)</summary>
          <pre className="plain-text raw-text log-tail">{detail.log_tail}</pre>
        </details>
      )}
    </div>
  );
}
