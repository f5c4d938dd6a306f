import { useCallback, useEffect, useState, type FormEvent, type ReactNode } from "react";
import { api, errorMessage, type FieldErrors } from "../../api";
import { consoleApi } from "../../api/console";
import type {
  ExportAggregate,
  ExportCreateRequest,
  ExportFileFormat,
  ExportFormat,
  ExportSnapshot,
  Role,
} from "../../api/types";
import { FieldError } from "../../components/FieldError";
import { Field, fieldErrorsOf, fieldId, formMessage, FormOutcome, invalidProps, LoadError, POLL_MS, ProgressBar, useLoad, when } from "./common";

const FORMATS: { value: ExportFormat; label: string }[] = [
  { value: "trl-preference", label: "TRL preference (prompt, chosen, rejected)" },
  { value: "trl-unpaired", label: "TRL unpaired (completion, label)" },
  { value: "ratings", label: "Ratings" },
  { value: "ratings-pairs", label: "Pairs made from ratings" },
  { value: "rankings", label: "Rankings" },
  { value: "sft", label: "SFT (chosen replies and rewrites)" },
  { value: "raw", label: "Raw judgments" },
];
const FILE_FORMATS: { value: ExportFileFormat; label: string }[] = [
  { value: "jsonl", label: "JSON Lines" },
  { value: "parquet", label: "Parquet" },
  { value: "hf", label: "Hugging Face dataset folder (zipped)" },
];
const AGGREGATES: { value: ExportAggregate; label: string }[] = [
  { value: "all", label: "Every judgment is a row" },
  { value: "majority", label: "Majority of a task's annotators" },
  { value: "mean", label: "Mean over a task's annotators" },
];
const STATUS_TEXT: Record<string, string> = { queued: "Queued", running: "Building", succeeded: "Ready", failed: "Failed" };
const STATUS_CLASS: Record<string, string> = {
  queued: "status-generating",
  running: "status-generating",
  succeeded: "status-done",
  failed: "status-failed",
};
const building = (snapshot: ExportSnapshot) => snapshot.status === "queued" || snapshot.status === "running";

interface ExportsPageProps {
  slug: string;
  /** Admins create exports; researchers read and download them. */
  role: Role;
  onAuthProblem: () => void;
}

export function ExportsPage({ slug, role, onAuthProblem }: ExportsPageProps) {
  const load = useCallback(() => consoleApi.exports(slug), [slug]);
  const { data: snapshots, setData, error, retry } = useLoad(load, onAuthProblem);
  const replace = useCallback(
    (fresh: ExportSnapshot) => setData((list) => list && list.map((s) => (s.id === fresh.id ? fresh : s))),
    [setData],
  );
  const pollError = useExportPolling(slug, snapshots, replace);

  return (
    <div className="console-columns">
      <section aria-labelledby="exports-heading">
        <h2 id="exports-heading">Snapshots</h2>
        {error && <LoadError what="the exports" error={error} retry={retry} />}
        {!error && !snapshots && <p>Loading the exports…</p>}
        {snapshots?.length === 0 && <p>No exports yet.</p>}
        {pollError && (
          <p role="status" className="error">
            Progress could not be refreshed ({pollError}); still trying every {POLL_MS / 1000} seconds.
          </p>
        )}
        {snapshots && snapshots.length > 0 && (
          <ul className="round-list">
            {snapshots.map((snapshot) => (
              <ExportCard key={snapshot.id} slug={slug} snapshot={snapshot} />
            ))}
          </ul>
        )}
      </section>
      {role === "admin" ? (
        <ExportForm slug={slug} onCreated={(created) => setData((list) => [created, ...(list ?? [])])} />
      ) : (
        <section className="side-panel" aria-labelledby="export-new-heading">
          <h2 id="export-new-heading">New exports</h2>
          <p>Only the project's admins create exports; you can read and download the ones listed.</p>
        </section>
      )}
    </div>
  );
}

/** Fetch each export still being built every POLL_MS, one round of fetches at a time. */
function useExportPolling(slug: string, snapshots: ExportSnapshot[] | null, onFresh: (s: ExportSnapshot) => void) {
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const ids = (snapshots ?? [])
    .filter(building)
    .map((s) => s.id)
    .join(",");

  useEffect(() => {
    if (!ids) return;
    let current = true;
    const timer = window.setTimeout(async () => {
      const results = await Promise.allSettled(ids.split(",").map((id) => consoleApi.export(slug, Number(id))));
      if (!current) return;
      const failed = results.find((result) => result.status === "rejected");
      setError(failed ? errorMessage(failed.reason) : null);
      for (const result of results) if (result.status === "fulfilled") onFresh(result.value);
      setTick((n) => n + 1);
    }, POLL_MS);
    return () => {
      current = false;
      window.clearTimeout(timer);
    };
  }, [slug, ids, tick, onFresh]);

  return ids ? error : null;
}

function ExportCard({ slug, snapshot }: { slug: string; snapshot: ExportSnapshot }) {
  const status = snapshot.status ?? "queued";
  const headingId = `export-${snapshot.id}-heading`;
  const title = `Export ${snapshot.id}`;
  return (
    <li className="round-card" aria-labelledby={headingId}>
      <div className="round-title">
        <h3 id={headingId}>{title}</h3>
        <span className={`badge ${STATUS_CLASS[status] ?? ""}`}>{STATUS_TEXT[status] ?? status}</span>
      </div>
      <p className="hint">
        {snapshot.format} · {snapshot.file_format ?? "jsonl"} · created {when(snapshot.created_at)}
        {snapshot.finished_at && ` · finished ${when(snapshot.finished_at)}`}
      </p>
      {building(snapshot) && (
        <ProgressBar label={`Progress of ${title}`} done={snapshot.judgments_done} total={snapshot.judgments_total} unit="judgments read" />
      )}
      {status === "succeeded" && (
        <p className="round-counts">
          {snapshot.row_count ?? 0} rows · sha256 <code title={snapshot.content_sha256}>{snapshot.content_sha256?.slice(0, 12)}</code>
        </p>
      )}
      {snapshot.error && (
        <p className="error" role="alert">
          {snapshot.error}
        </p>
      )}
      <div className="submit-row">
        {status === "succeeded" && (
          <a className="button-link" href={consoleApi.exportDownloadPath(slug, snapshot.id)} download={snapshot.file_name || true}>
            Download {snapshot.file_name || title}
          </a>
        )}
      </div>
      {snapshot.card && (
        <details>
          <summary>Dataset card</summary>
          <div className="plain-text version-text">{snapshot.card}</div>
        </details>
      )}
    </li>
  );
}

interface Choice {
  id: number;
  label: string;
}

interface FormOptions {
  rounds: Choice[];
  versions: Choice[];
  guidelines: Choice[];
  annotators: Choice[];
}

/** What the filters can pick from: rounds, model versions, guideline versions, annotators with judgments. */
async function loadOptions(slug: string): Promise<FormOptions> {
  const [rounds, versions, guidelines, quality] = await Promise.all([
    api.rounds(slug),
    api.modelVersions(),
    consoleApi.guidelines(slug),
    api.quality(slug),
  ]);
  return {
    rounds: rounds.map((r) => ({ id: r.id, label: r.name })),
    versions: versions.map((v) => ({ id: v.id, label: v.label })),
    guidelines: guidelines.map((g) => ({ id: g.version, label: `Version ${g.version}` })),
    annotators: quality.annotators.map((a) => ({ id: a.annotator_id, label: a.annotator })),
  };
}

export interface ExportValues {
  format: ExportFormat;
  file_format: ExportFileFormat;
  ties: "drop" | "keep";
  both_bad: "drop" | "keep";
  min_strength: string;
  aggregate: ExportAggregate;
  final_turn_only: boolean;
  seed: string;
  rounds: number[];
  model_versions: number[];
  guideline_versions: number[];
  annotators: number[];
  since: string;
  until: string;
}

const INITIAL: ExportValues = {
  format: "trl-preference",
  file_format: "jsonl",
  ties: "drop",
  both_bad: "drop",
  min_strength: "1",
  aggregate: "all",
  final_turn_only: false,
  seed: "0",
  rounds: [],
  model_versions: [],
  guideline_versions: [],
  annotators: [],
  since: "",
  until: "",
};

/** A datetime-local value as an ISO instant in the browser's zone; null when empty. */
function instant(local: string): string | null | undefined {
  if (!local.trim()) return null;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** The request, or field errors for what cannot be sent as typed. */
export function exportRequest(values: ExportValues): { request: ExportCreateRequest; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const whole = (text: string, field: string) => {
    const number = Number(text);
    if (text.trim() === "" || !Number.isInteger(number)) errors[field] = ["Enter a whole number."];
    return number;
  };
  const since = instant(values.since);
  const until = instant(values.until);
  if (since === undefined) errors["filters.since"] = ["Enter a date and time."];
  if (until === undefined) errors["filters.until"] = ["Enter a date and time."];
  const request: ExportCreateRequest = {
    format: values.format,
    file_format: values.file_format,
    rules: {
      ties: values.ties,
      both_bad: values.both_bad,
      min_strength: whole(values.min_strength, "rules.min_strength"),
      aggregate: values.aggregate,
      final_turn_only: values.final_turn_only,
      seed: whole(values.seed, "rules.seed"),
    },
    filters: {
      rounds: values.rounds,
      model_versions: values.model_versions,
      guideline_versions: values.guideline_versions,
      annotators: values.annotators,
      since: since ?? null,
      until: until ?? null,
    },
  };
  return { request, errors };
}

type ListName = "rounds" | "model_versions" | "guideline_versions" | "annotators";

export function ExportForm({ slug, onCreated }: { slug: string; onCreated: (snapshot: ExportSnapshot) => void }) {
  const loadChoices = useCallback(() => loadOptions(slug), [slug]);
  const options = useLoad(loadChoices, noop);
  const [values, setValues] = useState<ExportValues>(INITIAL);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<string | null>(null);
  const [created, setCreated] = useState<string | null>(null);
  const set = (change: Partial<ExportValues>) => setValues((previous) => ({ ...previous, ...change }));
  const toggle = (name: ListName, id: number, on: boolean) =>
    set({ [name]: on ? [...values[name], id] : values[name].filter((x) => x !== id) });

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setMessage(null);
    setCreated(null);
    const { request, errors: local } = exportRequest(values);
    setErrors(local);
    if (Object.keys(local).length) {
      setMessage("Some options need fixing first; see the messages next to them.");
      return;
    }
    setBusy(true);
    try {
      const snapshot = await consoleApi.createExport(slug, request);
      setCreated(`Export ${snapshot.id} is being built; its progress shows in the list.`);
      onCreated(snapshot);
    } catch (caught) {
      const fields = fieldErrorsOf(caught);
      setErrors(fields);
      setMessage(formMessage(errorMessage(caught), fields, (field) => SHOWN.has(field.replace(/\.\d+$/, ""))));
    } finally {
      setBusy(false);
    }
  }

  const messagesFor = (field: string) => {
    const found = Object.entries(errors).filter(([name]) => name === field || name.startsWith(`${field}.`));
    return found.length ? found.flatMap(([, messages]) => messages) : undefined;
  };
  const id = (field: string) => fieldId("export", field);

  const select = <T extends string>(field: string, label: string, value: T, choices: { value: T; label: string }[], onChange: (value: T) => void) => (
    <Field id={id(field)} label={label} messages={messagesFor(field)}>
      {(props) => (
        <select {...props} value={value} onChange={(e) => onChange(e.target.value as T)}>
          {choices.map((choice) => (
            <option key={choice.value} value={choice.value}>
              {choice.label}
            </option>
          ))}
        </select>
      )}
    </Field>
  );

  const checkboxes = (name: ListName, legend: string, choices: Choice[] | undefined, empty: string): ReactNode => {
    const field = `filters.${name}`;
    const messages = messagesFor(field);
    return (
      <fieldset className="group choices" {...invalidProps(id(field), messages)}>
        <legend>{legend}</legend>
        {choices === undefined && <p className="hint">Loading…</p>}
        {choices?.length === 0 && <p className="hint">{empty}</p>}
        {choices?.map((choice) => (
          <label key={choice.id} className="check">
            <input type="checkbox" checked={values[name].includes(choice.id)} onChange={(e) => toggle(name, choice.id, e.target.checked)} />
            <span>{choice.label}</span>
          </label>
        ))}
        <FieldError id={`${id(field)}-error`} messages={messages} />
      </fieldset>
    );
  };

  const choices = options.data;
  return (
    <form className="console-form" onSubmit={onSubmit} noValidate aria-labelledby="export-new-heading">
      <h2 id="export-new-heading">New export</h2>
      {select("format", "Format", values.format, FORMATS, (format) => set({ format }))}
      {select("file_format", "File", values.file_format, FILE_FORMATS, (file_format) => set({ file_format }))}

      <fieldset className="group">
        <legend>Rules</legend>
        <div className="field-grid">
          {select("rules.ties", "Ties", values.ties, DROP_KEEP, (ties) => set({ ties }))}
          {select("rules.both_bad", "“Both bad”", values.both_bad, DROP_KEEP, (both_bad) => set({ both_bad }))}
          {select("rules.aggregate", "Several annotators", values.aggregate, AGGREGATES, (aggregate) => set({ aggregate }))}
          <Field id={id("rules.min_strength")} label="Weakest preference kept" messages={messagesFor("rules.min_strength")}>
            {(props) => (
              <input {...props} type="number" inputMode="numeric" min={0} max={10} value={values.min_strength} onChange={(e) => set({ min_strength: e.target.value })} />
            )}
          </Field>
          <Field id={id("rules.seed")} label="Seed" messages={messagesFor("rules.seed")}>
            {(props) => <input {...props} type="number" inputMode="numeric" min={0} value={values.seed} onChange={(e) => set({ seed: e.target.value })} />}
          </Field>
        </div>
        <label className="check">
          <input type="checkbox" checked={values.final_turn_only} onChange={(e) => set({ final_turn_only: e.target.checked })} />
          <span>Only the final turn of multi-turn sessions</span>
        </label>
      </fieldset>

      <fieldset className="group">
        <legend>Filters (nothing ticked: no restriction)</legend>
        {options.error && <LoadError what="the filter choices" error={options.error} retry={options.retry} />}
        {checkboxes("rounds", "Rounds", choices?.rounds, "No rounds yet.")}
        {checkboxes("model_versions", "Model versions (every candidate from these)", choices?.versions, "No model versions.")}
        {checkboxes("guideline_versions", "Guideline versions", choices?.guidelines, "No versions.")}
        {checkboxes("annotators", "Annotators", choices?.annotators, "Nobody has judged yet.")}
        <div className="field-grid">
          <Field id={id("filters.since")} label="Judged from" messages={messagesFor("filters.since")}>
            {(props) => <input {...props} type="datetime-local" value={values.since} onChange={(e) => set({ since: e.target.value })} />}
          </Field>
          <Field id={id("filters.until")} label="Judged before" messages={messagesFor("filters.until")}>
            {(props) => <input {...props} type="datetime-local" value={values.until} onChange={(e) => set({ until: e.target.value })} />}
          </Field>
        </div>
      </fieldset>

      <FormOutcome error={message} notice={created} />
      <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
        {busy ? "Starting…" : "Create export"}
      </button>
    </form>
  );
}

const DROP_KEEP: { value: "drop" | "keep"; label: string }[] = [
  { value: "drop", label: "Leave out" },
  { value: "keep", label: "Keep" },
];

const SHOWN = new Set([
  "format",
  "file_format",
  "rules.ties",
  "rules.both_bad",
  "rules.aggregate",
  "rules.min_strength",
  "rules.seed",
  "filters.rounds",
  "filters.model_versions",
  "filters.guideline_versions",
  "filters.annotators",
  "filters.since",
  "filters.until",
]);

const noop = () => {};
