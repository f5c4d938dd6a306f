import { Fragment, useCallback, useEffect, useMemo, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { ApiError, errorMessage, type FieldErrors } from "../../api";
import { consoleApi } from "../../api/console";
import type {
  TrainingJobKind,
  TrainingTrigger,
  TrainingTriggerChange,
  TrainingTriggerConfigRequest,
  TrainingTriggerWhen,
  TrainingTriggerWriteRequest,
} from "../../api/types";
import { FieldError } from "../../components/FieldError";
import {
  Field,
  fieldErrorsOf,
  formMessage,
  FormOutcome,
  invalidProps,
  isUnder,
  JOB_KINDS,
  KIND_TEXT,
  LoadError,
  messagesUnder,
  parseOverrides,
  useLoad,
  when as formatTime,
} from "./common";

export const CRON_HINT = "minute hour day month weekday, e.g. 0 3 * * * (nightly)";
const WHEN_CHOICES: { value: TrainingTriggerWhen; label: string }[] = [
  { value: "schedule", label: "On a cron schedule" },
  { value: "round_closed", label: "When a round of the project closes" },
];
const OVERRIDE_EXAMPLE: Record<TrainingJobKind, string> = {
  reward_model: '{"num_train_epochs": 1}',
  dpo: '{"beta": 0.1, "max_steps": 200}',
};
const TIME_ZONES_ID = "trigger-time-zones";

/** What the trigger form holds, as typed. */
export interface TriggerValues {
  name: string;
  when: TrainingTriggerWhen;
  cron: string;
  cron_timezone: string;
  kinds: TrainingJobKind[];
  min_new_judgments: string;
  enabled: boolean;
  /** Recipe overrides per kind, as JSON text. */
  config: Record<TrainingJobKind, string>;
}

/** A new trigger starts from the server's defaults: nightly at 03:00 UTC, both kinds. */
export const NEW_TRIGGER: TriggerValues = {
  name: "",
  when: "schedule",
  cron: "0 3 * * *",
  cron_timezone: "UTC",
  kinds: ["reward_model", "dpo"],
  min_new_judgments: "1",
  enabled: true,
  config: { reward_model: "", dpo: "" },
};

export function triggerValues(trigger: TrainingTrigger): TriggerValues {
  const overrides = (kind: TrainingJobKind) => {
    const config = trigger.config[kind];
    return config && Object.keys(config).length ? JSON.stringify(config, null, 2) : "";
  };
  return {
    name: trigger.name,
    when: trigger.when,
    cron: trigger.cron,
    cron_timezone: trigger.cron_timezone,
    kinds: [...trigger.kinds],
    min_new_judgments: String(trigger.min_new_judgments),
    enabled: trigger.enabled,
    config: { reward_model: overrides("reward_model"), dpo: overrides("dpo") },
  };
}

/**
 * The create body, or messages for what cannot be sent as typed. The cron and its zone are
 * only sent for schedule triggers; recipe overrides only when some are given.
 */
export function triggerRequest(values: TriggerValues): { request: TrainingTriggerWriteRequest; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const request: TrainingTriggerWriteRequest = {
    name: values.name.trim(),
    when: values.when,
  };
  if (values.when === "schedule") {
    request.cron = values.cron.trim().replace(/\s+/g, " ");
    request.cron_timezone = values.cron_timezone.trim();
  }
  request.kinds = JOB_KINDS.filter((kind) => values.kinds.includes(kind));
  if (request.kinds.length === 0) errors.kinds = ["Tick at least one kind of job."];
  const minimum = Number(values.min_new_judgments);
  if (values.min_new_judgments.trim() === "" || !Number.isInteger(minimum)) {
    errors.min_new_judgments = ["Enter a whole number."];
  } else request.min_new_judgments = minimum;
  request.enabled = values.enabled;
  const config: TrainingTriggerConfigRequest = {};
  for (const kind of JOB_KINDS) {
    const parsed = parseOverrides(values.config[kind]);
    if (parsed.error) errors[`config.${kind}`] = [parsed.error];
    else if (parsed.value) config[kind] = parsed.value as TrainingTriggerConfigRequest[typeof kind];
  }
  if (Object.keys(config).length) request.config = config;
  return { request, errors };
}

/** The PATCH body: only the settings that differ from the trigger as loaded. */
export function triggerChange(
  values: TriggerValues,
  trigger: TrainingTrigger,
): { change: TrainingTriggerChange; errors: FieldErrors } {
  const { request, errors } = triggerRequest(values);
  const before = triggerRequest(triggerValues(trigger)).request;
  const change: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(request)) {
    if (key !== "config" && JSON.stringify(value) !== JSON.stringify(before[key as keyof TrainingTriggerWriteRequest])) {
      change[key] = value;
    }
  }
  if (JSON.stringify(request.config ?? {}) !== JSON.stringify(before.config ?? {})) change.config = request.config ?? {};
  return { change: change as TrainingTriggerChange, errors };
}

/** Whether the form shows a control for an error's field (the others go in the form's message). */
function shownField(field: string, when: TrainingTriggerWhen): boolean {
  if (["name", "when", "min_new_judgments", "enabled"].includes(field) || isUnder(field, "kinds")) return true;
  if (field === "cron" || field === "cron_timezone") return when === "schedule";
  return JOB_KINDS.some((kind) => isUnder(field, `config.${kind}`));
}

/** An action's failure in words; a lost session also tells the app. */
function failure(caught: unknown, onAuthProblem: () => void): string {
  if (caught instanceof ApiError && caught.isAuthProblem) onAuthProblem();
  return errorMessage(caught);
}

const triggerTitle = (trigger: TrainingTrigger) => trigger.name || `Trigger ${trigger.id}`;
const kindList = (kinds: readonly TrainingJobKind[]) => kinds.map((kind) => KIND_TEXT[kind]).join(" and ");

/** Every zone the browser knows, offered while typing the cron's zone. */
function timeZones(): string[] {
  try {
    const zones = Intl.supportedValuesOf("timeZone");
    return zones.includes("UTC") ? zones : ["UTC", ...zones];
  } catch {
    return ["UTC"];
  }
}

interface TrainingTriggersProps {
  slug: string;
  onAuthProblem: () => void;
  /** A check may have started jobs: the page fetches its job list again. */
  onChecked: () => void;
}

/** The project's training triggers: what starts training by itself, and when. */
export function TrainingTriggers({ slug, onAuthProblem, onChecked }: TrainingTriggersProps) {
  const load = useCallback(() => consoleApi.trainingTriggers(slug), [slug]);
  const { data: triggers, setData, error, retry } = useLoad(load, onAuthProblem);
  const zones = useMemo(timeZones, []);
  const [deleted, setDeleted] = useState<string | null>(null);
  const headingRef = useRef<HTMLHeadingElement>(null);

  const replace = (fresh: TrainingTrigger) => setData((list) => list && list.map((t) => (t.id === fresh.id ? fresh : t)));
  /** The card and its buttons are gone: say so, and put focus somewhere that still exists. */
  const remove = (gone: TrainingTrigger) => {
    setData((list) => list && list.filter((t) => t.id !== gone.id));
    setDeleted(`Trigger “${triggerTitle(gone)}” was deleted.`);
    headingRef.current?.focus();
  };

  async function create(request: TrainingTriggerWriteRequest) {
    const created = await consoleApi.createTrainingTrigger(slug, request);
    setData((list) => [...(list ?? []), created]);
    return `Trigger “${triggerTitle(created)}” was created${created.enabled ? "" : " (disabled)"}.`;
  }

  return (
    <section className="training-triggers" aria-labelledby="triggers-heading">
      <h2 id="triggers-heading" ref={headingRef} tabIndex={-1}>
        Schedule
      </h2>
      <p className="hint">
        A trigger starts training by itself, on a cron schedule or when a round closes, for each kind that has enough new
        judgments since its last job.
      </p>
      <datalist id={TIME_ZONES_ID}>
        {zones.map((zone) => (
          <option key={zone} value={zone} />
        ))}
      </datalist>
      <div className="console-columns">
        <div>
          {deleted && (
            <p role="status" className="notice">
              {deleted}
            </p>
          )}
          {error && <LoadError what="the training triggers" error={error} retry={retry} />}
          {!error && !triggers && <p>Loading the training triggers…</p>}
          {triggers?.length === 0 && <p>No triggers yet; jobs start only by hand or when a round that trains on close closes.</p>}
          {triggers && triggers.length > 0 && (
            <ul className="round-list" aria-label="Training triggers">
              {triggers.map((trigger) => (
                <TriggerCard
                  key={trigger.id}
                  trigger={trigger}
                  onChanged={replace}
                  onDeleted={remove}
                  onChecked={onChecked}
                  onAuthProblem={onAuthProblem}
                />
              ))}
            </ul>
          )}
        </div>
        <TriggerForm
          idPrefix="trigger-new"
          heading="New trigger"
          initial={NEW_TRIGGER}
          submitLabel="Create trigger"
          busyLabel="Creating…"
          resetOnSave
          onSave={create}
          onAuthProblem={onAuthProblem}
        />
      </div>
    </section>
  );
}

interface TriggerCardProps {
  trigger: TrainingTrigger;
  onChanged: (trigger: TrainingTrigger) => void;
  onDeleted: (trigger: TrainingTrigger) => void;
  onChecked: () => void;
  onAuthProblem: () => void;
}

type Action = "run" | "toggle" | "delete";

function TriggerCard({ trigger, onChanged, onDeleted, onChecked, onAuthProblem }: TriggerCardProps) {
  const [busy, setBusy] = useState<Action | null>(null);
  const [failed, setFailed] = useState<{ action: Action; text: string } | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [editing, setEditing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const keepRef = useRef<HTMLButtonElement>(null);
  const deleteRef = useRef<HTMLButtonElement>(null);
  const editRef = useRef<HTMLButtonElement>(null);

  const title = triggerTitle(trigger);
  const base = `trigger-${trigger.id}`;
  const headingId = `${base}-heading`;
  const errorId = `${base}-action-error`;
  const editId = `${base}-edit`;
  const confirmId = `${base}-confirm`;
  const overrides = JOB_KINDS.filter((kind) => Object.keys(trigger.config[kind] ?? {}).length > 0);

  useEffect(() => {
    if (confirming) keepRef.current?.focus();
  }, [confirming]);

  async function act(action: Action, work: () => Promise<void>, what: string) {
    setBusy(action);
    setFailed(null);
    setNotice(null);
    try {
      await work();
    } catch (caught) {
      setFailed({ action, text: `Could not ${what}: ${failure(caught, onAuthProblem)}` });
    } finally {
      setBusy(null);
    }
  }

  const run = () =>
    act(
      "run",
      async () => {
        const checked = await consoleApi.runTrainingTrigger(trigger.id);
        onChanged(checked);
        setNotice(`Run now: ${checked.last_result || "the check recorded nothing"}.`);
        onChecked();
      },
      "run it now",
    );

  const toggle = () =>
    act(
      "toggle",
      async () => {
        const fresh = await consoleApi.updateTrainingTrigger(trigger.id, { enabled: !trigger.enabled });
        onChanged(fresh);
        setNotice(
          fresh.enabled
            ? "Enabled: it checks again when it is due."
            : "Disabled: it does not check by itself; Run now still does.",
        );
      },
      trigger.enabled ? "disable it" : "enable it",
    );

  const remove = () =>
    act(
      "delete",
      async () => {
        await consoleApi.deleteTrainingTrigger(trigger.id);
        onDeleted(trigger);
      },
      "delete it",
    );

  function keep() {
    setConfirming(false);
    deleteRef.current?.focus();
  }

  async function save(_request: TrainingTriggerWriteRequest, values: TriggerValues) {
    const { change } = triggerChange(values, trigger);
    if (Object.keys(change).length === 0) return "Nothing changed.";
    const fresh = await consoleApi.updateTrainingTrigger(trigger.id, change);
    onChanged(fresh);
    setEditing(false);
    setNotice("Changes saved.");
    editRef.current?.focus();
    return null;
  }

  const describedBy = (action: Action) => (failed?.action === action ? errorId : undefined);
  return (
    <li className="round-card" aria-labelledby={headingId}>
      <div className="round-title">
        <h3 id={headingId}>{title}</h3>
        <span className={`badge ${trigger.enabled ? "status-done" : ""}`}>{trigger.enabled ? "Enabled" : "Disabled"}</span>
      </div>
      <dl className="facts">
        <dt>When</dt>
        <dd>
          {trigger.when === "schedule" ? (
            <>
              Cron <code>{trigger.cron}</code> in {trigger.cron_timezone}
            </>
          ) : (
            "When a round of the project closes"
          )}
        </dd>
        <dt>Trains</dt>
        <dd>{kindList(trigger.kinds)}</dd>
        <dt>Needs</dt>
        <dd>
          {trigger.min_new_judgments} new {trigger.min_new_judgments === 1 ? "judgment" : "judgments"} since a kind's last job
        </dd>
        {overrides.map((kind) => (
          <Fragment key={kind}>
            <dt>{KIND_TEXT[kind]} overrides</dt>
            <dd>
              <code>{JSON.stringify(trigger.config[kind])}</code>
            </dd>
          </Fragment>
        ))}
        <dt>Last check</dt>
        <dd>
          {trigger.last_checked_at
            ? `${formatTime(trigger.last_checked_at)}: ${trigger.last_result || "nothing recorded"}`
            : "Not checked yet"}
        </dd>
        {trigger.last_jobs.length > 0 && (
          <>
            <dt>Jobs it last started</dt>
            <dd>{trigger.last_jobs.map((id) => `#${id}`).join(", ")}</dd>
          </>
        )}
      </dl>
      <div className="submit-row">
        <button
          type="button"
          onClick={() => void run()}
          disabled={busy !== null}
          aria-busy={busy === "run"}
          aria-label={`Run now: ${title}`}
          aria-describedby={describedBy("run")}
        >
          {busy === "run" ? "Checking…" : "Run now"}
        </button>
        <button
          type="button"
          onClick={() => void toggle()}
          disabled={busy !== null || editing}
          aria-busy={busy === "toggle"}
          aria-label={`${trigger.enabled ? "Disable" : "Enable"} ${title}`}
          aria-describedby={describedBy("toggle")}
        >
          {trigger.enabled ? "Disable" : "Enable"}
        </button>
        <button
          ref={editRef}
          type="button"
          onClick={() => setEditing((shown) => !shown)}
          aria-expanded={editing}
          aria-controls={editing ? editId : undefined}
          aria-label={`Edit ${title}`}
        >
          Edit
        </button>
        <button
          ref={deleteRef}
          type="button"
          onClick={() => setConfirming(true)}
          disabled={busy !== null}
          aria-label={`Delete ${title}`}
          aria-describedby={describedBy("delete")}
        >
          Delete
        </button>
      </div>
      {confirming && (
        <div
          className="confirm"
          role="group"
          aria-labelledby={confirmId}
          onKeyDown={(event: KeyboardEvent) => event.key === "Escape" && keep()}
        >
          <p id={confirmId}>Delete “{title}”? Its schedule stops; the jobs it started stay.</p>
          <div className="submit-row">
            <button
              type="button"
              className="danger"
              onClick={() => void remove()}
              disabled={busy !== null}
              aria-busy={busy === "delete"}
            >
              {busy === "delete" ? "Deleting…" : "Yes, delete it"}
            </button>
            <button ref={keepRef} type="button" onClick={keep} disabled={busy !== null}>
              Keep it
            </button>
          </div>
        </div>
      )}
      {failed && (
        <p id={errorId} role="alert" className="error">
          {failed.text}
        </p>
      )}
      {notice && (
        <p role="status" className="notice">
          {notice}
        </p>
      )}
      {editing && (
        <div id={editId}>
          <TriggerForm
            idPrefix={`${base}-form`}
            heading={`Edit ${title}`}
            level={4}
            initial={triggerValues(trigger)}
            submitLabel="Save changes"
            busyLabel="Saving…"
            onSave={save}
            onCancel={() => {
              setEditing(false);
              editRef.current?.focus();
            }}
            onAuthProblem={onAuthProblem}
          />
        </div>
      )}
    </li>
  );
}

interface TriggerFormProps {
  /** Prefix of the controls' ids, unique on the page. */
  idPrefix: string;
  heading: string;
  level?: 3 | 4;
  initial: TriggerValues;
  submitLabel: string;
  busyLabel: string;
  /** Start again from `initial` once saved (the create form). */
  resetOnSave?: boolean;
  /** Sends the checked request; resolves to words to show, or rejects with the server's. */
  onSave: (request: TrainingTriggerWriteRequest, values: TriggerValues) => Promise<string | null>;
  onCancel?: () => void;
  onAuthProblem: () => void;
}

/** Name, when, cron and zone, kinds, threshold, enabled and recipe overrides of a trigger. */
function TriggerForm(props: TriggerFormProps) {
  const { idPrefix, heading, level = 3, initial, submitLabel, busyLabel, resetOnSave, onSave, onCancel, onAuthProblem } = props;
  const [values, setValues] = useState<TriggerValues>(initial);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const set = (change: Partial<TriggerValues>) => setValues((previous) => ({ ...previous, ...change }));
  const id = (field: string) => `${idPrefix}-${field.replace(/[^A-Za-z0-9_-]/g, "-")}`;
  const headingId = id("heading");
  const Heading = level === 3 ? "h3" : "h4";

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setMessage(null);
    setSaved(null);
    const { request, errors: local } = triggerRequest(values);
    setErrors(local);
    if (Object.keys(local).length) {
      setMessage("Some settings need fixing first; see the messages next to them.");
      return;
    }
    setBusy(true);
    try {
      const words = await onSave(request, values);
      if (resetOnSave) setValues(initial);
      setSaved(words);
    } catch (caught) {
      const fields = fieldErrorsOf(caught);
      setErrors(fields);
      setMessage(formMessage(failure(caught, onAuthProblem), fields, (field) => shownField(field, values.when)));
    } finally {
      setBusy(false);
    }
  }

  const kindsMessages = messagesUnder(errors, "kinds");
  const whenMessages = messagesUnder(errors, "when");
  // Shown at once when the trigger has overrides or the server found fault with them.
  const overridesOpen = JOB_KINDS.some((kind) => initial.config[kind] !== "") || Object.keys(errors).some((f) => isUnder(f, "config"));
  return (
    <form className="console-form trigger-form" onSubmit={onSubmit} noValidate aria-labelledby={headingId}>
      <Heading id={headingId}>{heading}</Heading>
      <Field id={id("name")} label="Name" hint="(optional, e.g. nightly)" messages={messagesUnder(errors, "name")}>
        {(props) => <input {...props} value={values.name} maxLength={200} onChange={(e) => set({ name: e.target.value })} />}
      </Field>

      <fieldset className="group choices" {...invalidProps(id("when"), whenMessages)}>
        <legend>When</legend>
        {WHEN_CHOICES.map((choice) => (
          <label key={choice.value} className="check">
            <input
              type="radio"
              name={id("when")}
              value={choice.value}
              checked={values.when === choice.value}
              onChange={() => set({ when: choice.value })}
            />
            <span>{choice.label}</span>
          </label>
        ))}
        <FieldError id={`${id("when")}-error`} messages={whenMessages} />
      </fieldset>

      {values.when === "schedule" && (
        <div className="field-grid">
          <Field id={id("cron")} label="Cron" hint={CRON_HINT} messages={messagesUnder(errors, "cron")}>
            {(props) => (
              <input
                {...props}
                value={values.cron}
                autoComplete="off"
                spellCheck={false}
                className="mono"
                onChange={(e) => set({ cron: e.target.value })}
              />
            )}
          </Field>
          <Field id={id("cron_timezone")} label="Time zone" hint="(e.g. Europe/Berlin)" messages={messagesUnder(errors, "cron_timezone")}>
            {(props) => (
              <input
                {...props}
                value={values.cron_timezone}
                list={TIME_ZONES_ID}
                autoComplete="off"
                spellCheck={false}
                onChange={(e) => set({ cron_timezone: e.target.value })}
              />
            )}
          </Field>
        </div>
      )}

      <fieldset className="group choices" {...invalidProps(id("kinds"), kindsMessages)}>
        <legend>Train</legend>
        {JOB_KINDS.map((kind) => (
          <label key={kind} className="check">
            <input
              type="checkbox"
              checked={values.kinds.includes(kind)}
              onChange={(e) => set({ kinds: e.target.checked ? [...values.kinds, kind] : values.kinds.filter((k) => k !== kind) })}
            />
            <span>{KIND_TEXT[kind]}</span>
          </label>
        ))}
        <FieldError id={`${id("kinds")}-error`} messages={kindsMessages} />
      </fieldset>

      <Field
        id={id("min_new_judgments")}
        label="Minimum new judgments"
        hint="(since a kind's last job)"
        messages={messagesUnder(errors, "min_new_judgments")}
      >
        {(props) => (
          <input
            {...props}
            type="number"
            inputMode="numeric"
            min={1}
            step={1}
            value={values.min_new_judgments}
            onChange={(e) => set({ min_new_judgments: e.target.value })}
          />
        )}
      </Field>

      <label className="check">
        <input
          type="checkbox"
          checked={values.enabled}
          onChange={(e) => set({ enabled: e.target.checked })}
          {...invalidProps(id("enabled"), errors.enabled)}
        />
        <span>Enabled</span>
      </label>
      <FieldError id={`${id("enabled")}-error`} messages={errors.enabled} />

      <details className="overrides" open={overridesOpen}>
        <summary>Recipe overrides (optional)</summary>
        {JOB_KINDS.map((kind) => (
          <Field
            key={kind}
            id={id(`config.${kind}`)}
            label={`${KIND_TEXT[kind]} overrides`}
            hint={`(JSON, e.g. ${OVERRIDE_EXAMPLE[kind]})`}
            messages={messagesUnder(errors, `config.${kind}`)}
          >
            {(props) => (
              <textarea
                {...props}
                rows={3}
                spellCheck={false}
                value={values.config[kind]}
                onChange={(e) => set({ config: { ...values.config, [kind]: e.target.value } })}
              />
            )}
          </Field>
        ))}
      </details>

      <FormOutcome error={message} notice={saved} />
      <div className="submit-row">
        <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
          {busy ? busyLabel : submitLabel}
        </button>
        {onCancel && (
          <button type="button" onClick={onCancel} disabled={busy}>
            Cancel
          </button>
        )}
      </div>
    </form>
  );
}
