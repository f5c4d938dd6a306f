import { useCallback, useState, type FormEvent } from "react";
import { errorMessage, type FieldErrors } from "../../api";
import { consoleApi } from "../../api/console";
import type { InterfaceKind, ProjectSettings, ProjectSettingsChange, ScaleKind } from "../../api/types";
import { FieldError } from "../../components/FieldError";
import { duration, Field, fieldErrorsOf, formMessage, FormOutcome, invalidProps, LoadError, useLoad } from "./common";

const SCALES: { kind: ScaleKind; label: string; description: string }[] = [
  {
    kind: "five_point",
    label: "5-point with tie",
    description: "A much better, A better, tie, B better, B much better.",
  },
  {
    kind: "eight_point",
    label: "8-point without tie",
    description: "From A far better to B far better; annotators must lean one way.",
  },
  { kind: "custom", label: "Custom", description: "Your own ordered points, each with a winner and a strength." },
];

const RUBRIC_POINTS = ["5", "4", "3", "2", "1"] as const;
const NUMBERS = ["overlap", "max_pending", "lease_seconds", "gold_rate", "reask_rate"] as const;
type NumberName = (typeof NUMBERS)[number];
type Winner = "A" | "B" | "";

export interface CustomPoint {
  value: string;
  label: string;
  winner: Winner;
  strength: string;
}

export interface SettingsValues {
  name: string;
  scale_kind: ScaleKind;
  custom_scale: CustomPoint[];
  allow_both_bad: boolean;
  overlap: string;
  max_pending: string;
  lease_seconds: string;
  gold_rate: string;
  reask_rate: string;
  rating_rubric: Record<string, string>;
  rating_aspects: string;
}

/** A small starting point for a custom scale: A better, tie, B better. */
const STARTER_SCALE: CustomPoint[] = [
  { value: "1", label: "A is better", winner: "A", strength: "1" },
  { value: "2", label: "About the same", winner: "", strength: "0" },
  { value: "3", label: "B is better", winner: "B", strength: "1" },
];

function customPoints(raw: unknown): CustomPoint[] {
  if (!Array.isArray(raw) || raw.length === 0) return STARTER_SCALE;
  return raw.map((point: Record<string, unknown>) => ({
    value: String(point.value ?? ""),
    label: String(point.label ?? ""),
    winner: point.winner === "A" || point.winner === "B" ? point.winner : "",
    strength: String(point.strength ?? ""),
  }));
}

export function valuesFrom(settings: ProjectSettings): SettingsValues {
  return {
    name: settings.name,
    scale_kind: settings.scale_kind ?? "five_point",
    custom_scale: customPoints(settings.custom_scale),
    allow_both_bad: settings.allow_both_bad ?? true,
    overlap: String(settings.overlap ?? ""),
    max_pending: String(settings.max_pending ?? ""),
    lease_seconds: String(settings.lease_seconds ?? ""),
    gold_rate: String(settings.gold_rate ?? ""),
    reask_rate: String(settings.reask_rate ?? ""),
    rating_rubric: { ...(settings.rating_rubric ?? {}) },
    rating_aspects: (settings.rating_aspects ?? []).join(", "),
  };
}

const asNumber = (text: string) => (text.trim() === "" ? NaN : Number(text));
const aspectList = (text: string) =>
  text
    .split(",")
    .map((aspect) => aspect.trim())
    .filter(Boolean);

/**
 * The PATCH body: only what differs from what was loaded. Numbers that are not numbers are
 * reported here, before anything is sent.
 */
export function settingsChange(
  values: SettingsValues,
  loaded: SettingsValues,
): { change: ProjectSettingsChange; errors: FieldErrors } {
  const change: ProjectSettingsChange = {};
  const errors: FieldErrors = {};
  if (values.name !== loaded.name) change.name = values.name.trim();
  if (values.allow_both_bad !== loaded.allow_both_bad) change.allow_both_bad = values.allow_both_bad;
  for (const name of NUMBERS) {
    if (values[name] === loaded[name]) continue;
    const number = asNumber(values[name]);
    if (Number.isFinite(number)) change[name] = number;
    else errors[name] = ["Enter a number."];
  }
  const customChanged = JSON.stringify(values.custom_scale) !== JSON.stringify(loaded.custom_scale);
  if (values.scale_kind !== loaded.scale_kind || (values.scale_kind === "custom" && customChanged)) {
    change.scale_kind = values.scale_kind;
    if (values.scale_kind === "custom") {
      // Sent as typed; the server names the point and the problem if a point is wrong.
      change.custom_scale = values.custom_scale.map((point) => ({
        value: point.value.trim() === "" ? null : Number(point.value),
        label: point.label,
        winner: point.winner || null,
        strength: point.strength.trim() === "" ? null : Number(point.strength),
      }));
    }
  }
  if (JSON.stringify(values.rating_rubric) !== JSON.stringify(loaded.rating_rubric)) {
    change.rating_rubric = values.rating_rubric;
  }
  if (values.rating_aspects !== loaded.rating_aspects) change.rating_aspects = aspectList(values.rating_aspects);
  return { change, errors };
}

/**
 * Server messages by the control they belong to: `rating_rubric.3` goes under point 3,
 * `rating_aspects.1` under the aspects input, named by the aspect it is about.
 */
export function placeSettingsErrors(errors: FieldErrors, aspects: string[]): FieldErrors {
  const placed: FieldErrors = {};
  const add = (field: string, message: string) => (placed[field] = [...(placed[field] ?? []), message]);
  for (const [field, messages] of Object.entries(errors)) {
    const [head, tail] = field.split(".", 2);
    for (const message of messages) {
      if (head === "rating_aspects" && tail !== undefined) {
        add("rating_aspects", `“${aspects[Number(tail)] ?? tail}”: ${message}`);
      } else add(field, message);
    }
  }
  return placed;
}

const SHOWN = new Set<string>([
  "name",
  "scale_kind",
  "custom_scale",
  "allow_both_bad",
  ...NUMBERS,
  "rating_rubric",
  ...RUBRIC_POINTS.map((point) => `rating_rubric.${point}`),
  "rating_aspects",
]);

interface SettingsPageProps {
  slug: string;
  onAuthProblem: () => void;
}

/** A project's feedback settings: the scale annotators answer on, overlap, leases, gold rate, rubric. */
export function SettingsPage({ slug, onAuthProblem }: SettingsPageProps) {
  const load = useCallback(() => consoleApi.settings(slug), [slug]);
  const { data: settings, error, retry } = useLoad(load, onAuthProblem);
  if (error) return <LoadError what="the settings" error={error} retry={retry} />;
  if (!settings) return <p>Loading the settings…</p>;
  return (
    <div className="console-columns">
      <SettingsForm slug={slug} settings={settings} />
      <InterfacesInUse slug={slug} />
    </div>
  );
}

export function SettingsForm({ slug, settings }: { slug: string; settings: ProjectSettings }) {
  const [loaded, setLoaded] = useState(() => valuesFrom(settings));
  const [values, setValues] = useState(loaded);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const set = (change: Partial<SettingsValues>) => setValues((previous) => ({ ...previous, ...change }));
  const setPoint = (index: number, change: Partial<CustomPoint>) =>
    set({ custom_scale: values.custom_scale.map((point, i) => (i === index ? { ...point, ...change } : point)) });

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setMessage(null);
    setSaved(null);
    const { change, errors: local } = settingsChange(values, loaded);
    setErrors(local);
    if (Object.keys(local).length) {
      setMessage("Some settings need fixing first; see the messages next to them.");
      return;
    }
    if (Object.keys(change).length === 0) {
      setSaved("Nothing changed.");
      return;
    }
    setBusy(true);
    try {
      const fresh = await consoleApi.updateSettings(slug, change);
      const freshValues = valuesFrom(fresh);
      setLoaded(freshValues);
      setValues(freshValues);
      setSaved("Settings saved. Annotators see them with their next task.");
    } catch (caught) {
      const placed = placeSettingsErrors(fieldErrorsOf(caught), aspectList(values.rating_aspects));
      setErrors(placed);
      setMessage(formMessage(errorMessage(caught), placed, (field) => SHOWN.has(field)));
    } finally {
      setBusy(false);
    }
  }

  function undo() {
    setValues(loaded);
    setErrors({});
    setMessage(null);
    setSaved(null);
  }

  const numberField = (name: NumberName, label: string, hint: string, step: number) => (
    <Field id={`settings-${name}`} label={label} hint={hint} messages={errors[name]}>
      {(props) => (
        <input
          {...props}
          type="number"
          inputMode={step < 1 ? "decimal" : "numeric"}
          step={step}
          value={values[name]}
          onChange={(e) => set({ [name]: e.target.value })}
        />
      )}
    </Field>
  );

  return (
    <form className="console-form settings-form" onSubmit={onSubmit} noValidate aria-labelledby="settings-heading">
      <h2 id="settings-heading">Project settings</h2>
      <Field id="settings-name" label="Name" messages={errors.name}>
        {(props) => <input {...props} value={values.name} onChange={(e) => set({ name: e.target.value })} />}
      </Field>

      <fieldset className="group" {...invalidProps("settings-scale_kind", errors.scale_kind)}>
        <legend>Pairwise scale</legend>
        {SCALES.map((scale) => (
          <label key={scale.kind} className="check">
            <input
              type="radio"
              name="scale_kind"
              value={scale.kind}
              checked={values.scale_kind === scale.kind}
              onChange={() => set({ scale_kind: scale.kind })}
            />
            <span>
              {scale.label} <span className="hint">{scale.description}</span>
            </span>
          </label>
        ))}
        <FieldError id="settings-scale_kind-error" messages={errors.scale_kind} />
      </fieldset>

      {values.scale_kind === "custom" && (
        <CustomScaleEditor
          points={values.custom_scale}
          messages={errors.custom_scale}
          onChange={setPoint}
          onAdd={() =>
            set({
              custom_scale: [
                ...values.custom_scale,
                { value: String(values.custom_scale.length + 1), label: "", winner: "B", strength: "1" },
              ],
            })
          }
          onRemove={(index) => set({ custom_scale: values.custom_scale.filter((_, i) => i !== index) })}
        />
      )}

      <label className="check">
        <input
          type="checkbox"
          checked={values.allow_both_bad}
          onChange={(e) => set({ allow_both_bad: e.target.checked })}
          {...invalidProps("settings-allow_both_bad", errors.allow_both_bad)}
        />
        <span>Offer “both are bad” on pairwise tasks</span>
      </label>
      <FieldError id="settings-allow_both_bad-error" messages={errors.allow_both_bad} />

      <fieldset className="group">
        <legend>Queue</legend>
        <div className="field-grid">
          {numberField("overlap", "Overlap", "(annotators per task)", 1)}
          {numberField("max_pending", "Max pending", "(tasks one annotator holds)", 1)}
          {numberField(
            "lease_seconds",
            "Lease TTL in seconds",
            duration(asNumber(values.lease_seconds)) && `(${duration(asNumber(values.lease_seconds))})`,
            1,
          )}
          {numberField("gold_rate", "Gold rate", "(share 0–0.5, e.g. 0.05)", 0.01)}
          {numberField("reask_rate", "Re-ask rate", "(swapped repeats, 0–0.5)", 0.01)}
        </div>
      </fieldset>

      <fieldset className="group" {...invalidProps("settings-rating_rubric", errors.rating_rubric)}>
        <legend>Rating rubric (1–5, shown on rating tasks)</legend>
        {RUBRIC_POINTS.map((point) => (
          <Field key={point} id={`settings-rating_rubric-${point}`} label={`Point ${point}`} messages={errors[`rating_rubric.${point}`]}>
            {(props) => (
              <input
                {...props}
                value={values.rating_rubric[point] ?? ""}
                onChange={(e) => set({ rating_rubric: { ...values.rating_rubric, [point]: e.target.value } })}
              />
            )}
          </Field>
        ))}
        <FieldError id="settings-rating_rubric-error" messages={errors.rating_rubric} />
      </fieldset>

      <Field
        id="settings-rating_aspects"
        label="Rating aspects"
        hint="(comma-separated, e.g. helpfulness, correctness)"
        messages={errors.rating_aspects}
      >
        {(props) => <input {...props} value={values.rating_aspects} onChange={(e) => set({ rating_aspects: e.target.value })} />}
      </Field>

      <FormOutcome error={message} notice={saved} />
      <div className="submit-row">
        <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
          {busy ? "Saving…" : "Save settings"}
        </button>
        <button type="button" disabled={busy} onClick={undo}>
          Undo changes
        </button>
      </div>
    </form>
  );
}

interface CustomScaleEditorProps {
  points: CustomPoint[];
  messages: string[] | undefined;
  onChange: (index: number, change: Partial<CustomPoint>) => void;
  onAdd: () => void;
  onRemove: (index: number) => void;
}

function CustomScaleEditor({ points, messages, onChange, onAdd, onRemove }: CustomScaleEditorProps) {
  return (
    <fieldset className="group custom-scale" {...invalidProps("settings-custom_scale", messages)}>
      <legend>Custom scale points, in the order annotators see them</legend>
      <ol className="scale-points">
        {points.map((point, index) => {
          const n = index + 1;
          return (
            <li key={index} className="scale-point-row">
              <div>
                <label htmlFor={`custom-${index}-label`}>Point {n} label</label>
                <input id={`custom-${index}-label`} value={point.label} onChange={(e) => onChange(index, { label: e.target.value })} />
              </div>
              <div>
                <label htmlFor={`custom-${index}-winner`}>Point {n} favours</label>
                <select
                  id={`custom-${index}-winner`}
                  value={point.winner}
                  onChange={(e) => {
                    const winner = e.target.value as Winner;
                    onChange(index, { winner, strength: winner ? (point.strength === "0" ? "1" : point.strength) : "0" });
                  }}
                >
                  <option value="A">A</option>
                  <option value="">Neither (tie)</option>
                  <option value="B">B</option>
                </select>
              </div>
              <div>
                <label htmlFor={`custom-${index}-strength`}>Point {n} strength</label>
                <input
                  id={`custom-${index}-strength`}
                  type="number"
                  inputMode="numeric"
                  min={0}
                  max={10}
                  value={point.strength}
                  onChange={(e) => onChange(index, { strength: e.target.value })}
                />
              </div>
              <div>
                <label htmlFor={`custom-${index}-value`}>Point {n} stored value</label>
                <input
                  id={`custom-${index}-value`}
                  type="number"
                  inputMode="numeric"
                  min={0}
                  max={99}
                  value={point.value}
                  onChange={(e) => onChange(index, { value: e.target.value })}
                />
              </div>
              <button type="button" className="remove" onClick={() => onRemove(index)} aria-label={`Remove point ${n}`}>
                Remove
              </button>
            </li>
          );
        })}
      </ol>
      <button type="button" onClick={onAdd} disabled={points.length >= 11}>
        Add a point
      </button>
      <FieldError id="settings-custom_scale-error" messages={messages} />
    </fieldset>
  );
}

const INTERFACES: { kind: InterfaceKind; label: string }[] = [
  { kind: "pairwise", label: "Pairwise comparison" },
  { kind: "ranking", label: "K-wise ranking" },
  { kind: "rating", label: "1–5 rating" },
  { kind: "thumbs", label: "Thumbs up or down" },
];

/**
 * Which interfaces the project's tasks use. A task carries its interface (rounds make
 * pairwise tasks), so this is a count to read, not a switch.
 */
function InterfacesInUse({ slug }: { slug: string }) {
  const load = useCallback(
    () => Promise.all(INTERFACES.map(({ kind }) => consoleApi.taskCount(slug, kind))),
    [slug],
  );
  const { data: counts, error, retry } = useLoad(load, noop);
  return (
    <section className="side-panel" aria-labelledby="interfaces-heading">
      <h2 id="interfaces-heading">Interfaces in use</h2>
      <p className="hint">
        Each task carries its interface; rounds create pairwise tasks. The scale and “both bad” apply to pairwise
        tasks, the rubric and aspects to rating tasks.
      </p>
      {error && <LoadError what="the task counts" error={error} retry={retry} />}
      {!error && !counts && <p>Counting tasks…</p>}
      {counts && (
        <dl className="stats compact">
          {INTERFACES.map(({ kind, label }, index) => (
            <div className="stat" key={kind}>
              <dt>{label}</dt>
              <dd>
                {counts[index]} {counts[index] === 1 ? "task" : "tasks"}
              </dd>
            </div>
          ))}
        </dl>
      )}
    </section>
  );
}

const noop = () => {};
