import { useState, type FormEvent } from "react";
import { api, ApiError, errorMessage, type FieldErrors } from "../../api";
import type { ModelVersion, Round, RoundCreateRequest } from "../../api/types";
import { FieldError } from "../../components/FieldError";
import { FormOutcome } from "./common";

interface RoundCreateFormProps {
  slug: string;
  versions: ModelVersion[] | null;
  versionsError: string | null;
  onCreated: (round: Round) => void;
}

const SAMPLING = ["temperature", "top_p", "max_tokens"] as const;
type SamplingName = (typeof SAMPLING)[number];

const EMPTY = {
  name: "",
  versionIds: [] as number[],
  promptCount: "",
  candidatesPerPrompt: "2",
  temperature: "",
  top_p: "",
  max_tokens: "",
};
type Values = typeof EMPTY;

/** A number typed in a field, or undefined when the field is left empty. */
function numberOrUndefined(text: string): number | undefined {
  return text.trim() === "" ? undefined : Number(text);
}

export function roundRequest(values: Values): RoundCreateRequest {
  const request: RoundCreateRequest = {
    name: values.name.trim(),
    model_version_ids: values.versionIds,
  };
  const promptCount = numberOrUndefined(values.promptCount);
  if (promptCount !== undefined) request.prompt_count = promptCount;
  const candidates = numberOrUndefined(values.candidatesPerPrompt);
  if (candidates !== undefined) request.candidates_per_prompt = candidates;
  const sampling: NonNullable<RoundCreateRequest["sampling_params"]> = {};
  for (const name of SAMPLING) {
    const value = numberOrUndefined(values[name]);
    if (value !== undefined) sampling[name] = value;
  }
  if (Object.keys(sampling).length) request.sampling_params = sampling;
  return request;
}

/**
 * Field errors with `sampling_params` spread over the field each message names
 * ("top_p must be between 0.01 and 1" belongs under Top p).
 */
export function placeErrors(errors: FieldErrors): FieldErrors {
  const placed: FieldErrors = {};
  const add = (field: string, message: string) => (placed[field] = [...(placed[field] ?? []), message]);
  for (const [field, messages] of Object.entries(errors)) {
    for (const message of messages) {
      const named = field === "sampling_params" ? SAMPLING.find((name) => message.startsWith(name)) : undefined;
      add(named ?? field, message);
    }
  }
  return placed;
}

/** Create a draft round: name, model versions, how many prompts and candidates, sampling. */
export function RoundCreateForm({ slug, versions, versionsError, onCreated }: RoundCreateFormProps) {
  const [values, setValues] = useState<Values>(EMPTY);
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [created, setCreated] = useState<string | null>(null);

  const set = (change: Partial<Values>) => setValues((previous) => ({ ...previous, ...change }));

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setMessage(null);
    setErrors({});
    setCreated(null);
    try {
      const round = await api.createRound(slug, roundRequest(values));
      setValues(EMPTY);
      setCreated(`Round “${round.name}” was created as a draft. Start it from the list when you are ready.`);
      onCreated(round);
    } catch (error) {
      const placed = error instanceof ApiError ? placeErrors(error.fieldErrors) : {};
      setErrors(placed);
      setMessage(formMessage(errorMessage(error), placed));
    } finally {
      setBusy(false);
    }
  }

  /** Props linking a control to its error message. */
  const described = (field: string) =>
    errors[field]
      ? { "aria-invalid": true as const, "aria-describedby": `round-${field}-error` }
      : {};

  return (
    <form className="round-form" onSubmit={onSubmit} noValidate aria-labelledby="round-form-heading">
      <h2 id="round-form-heading">New round</h2>

      <label htmlFor="round-name">Name</label>
      <input id="round-name" value={values.name} onChange={(e) => set({ name: e.target.value })} {...described("name")} />
      <FieldError id="round-name-error" messages={errors.name} />

      <fieldset className="version-choices" {...described("model_version_ids")}>
        <legend>Model versions</legend>
        {versionsError && <p className="error">Could not load model versions: {versionsError}</p>}
        {versions === null && !versionsError && <p className="hint">Loading model versions…</p>}
        {versions?.length === 0 && <p className="hint">No model versions are registered yet; an admin adds them.</p>}
        {versions?.map((version) => (
          <label key={version.id} className="check">
            <input
              type="checkbox"
              checked={values.versionIds.includes(version.id)}
              onChange={(e) =>
                set({
                  versionIds: e.target.checked
                    ? [...values.versionIds, version.id]
                    : values.versionIds.filter((id) => id !== version.id),
                })
              }
            />
            <span>
              {version.label} <span className="hint">{version.model_name} on {version.endpoint_name}</span>
            </span>
          </label>
        ))}
      </fieldset>
      <FieldError id="round-model_version_ids-error" messages={errors.model_version_ids} />

      <div className="field-grid">
        <NumberField
          id="prompt_count"
          label="Prompts"
          hint="sampled from the project's pool"
          value={values.promptCount}
          onChange={(promptCount) => set({ promptCount })}
          min={1}
          step={1}
          errors={errors}
        />
        <NumberField
          id="candidates_per_prompt"
          label="Candidates per prompt"
          value={values.candidatesPerPrompt}
          onChange={(candidatesPerPrompt) => set({ candidatesPerPrompt })}
          min={2}
          max={8}
          step={1}
          errors={errors}
        />
      </div>

      <fieldset className="sampling" {...described("sampling_params")}>
        <legend>Sampling (optional; the endpoint's defaults otherwise)</legend>
        <div className="field-grid">
          <NumberField
            id="temperature"
            label="Temperature"
            value={values.temperature}
            onChange={(temperature) => set({ temperature })}
            min={0}
            max={2}
            step={0.05}
            errors={errors}
          />
          <NumberField
            id="top_p"
            label="Top p"
            value={values.top_p}
            onChange={(top_p) => set({ top_p })}
            min={0.01}
            max={1}
            step={0.01}
            errors={errors}
          />
          <NumberField
            id="max_tokens"
            label="Max tokens"
            value={values.max_tokens}
            onChange={(max_tokens) => set({ max_tokens })}
            min={1}
            step={1}
            errors={errors}
          />
        </div>
      </fieldset>
      <FieldError id="round-sampling_params-error" messages={errors.sampling_params} />

      <FormOutcome error={message} notice={created} />
      <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
        {busy ? "Creating…" : "Create round"}
      </button>
    </form>
  );
}

interface NumberFieldProps {
  id: SamplingName | "prompt_count" | "candidates_per_prompt";
  label: string;
  hint?: string;
  value: string;
  onChange: (value: string) => void;
  min?: number;
  max?: number;
  step: number;
  errors: FieldErrors;
}

function NumberField({ id, label, hint, value, onChange, min, max, step, errors }: NumberFieldProps) {
  const messages = errors[id];
  return (
    <div>
      <label htmlFor={`round-${id}`}>
        {label} {hint && <span className="hint">({hint})</span>}
      </label>
      <input
        id={`round-${id}`}
        type="number"
        inputMode={step < 1 ? "decimal" : "numeric"}
        value={value}
        min={min}
        max={max}
        step={step}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={messages ? true : undefined}
        aria-describedby={messages ? `round-${id}-error` : undefined}
      />
      <FieldError id={`round-${id}-error`} messages={messages} />
    </div>
  );
}

const SHOWN = new Set(["name", "model_version_ids", "prompt_count", "candidates_per_prompt", "sampling_params", ...SAMPLING]);

/** The server's summary plus messages for fields this form does not show. */
function formMessage(detail: string, errors: FieldErrors): string {
  const extra = Object.entries(errors)
    .filter(([field]) => !SHOWN.has(field))
    .flatMap(([, messages]) => messages);
  return [...new Set([detail, ...extra])].join(" ");
}
