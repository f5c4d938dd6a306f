import { useCallback, useState, type FormEvent } from "react";
import { errorMessage, type FieldErrors } from "../../api";
import { consoleApi } from "../../api/console";
import type { GuidelinesVersion, ProjectSettings } from "../../api/types";
import { FieldError } from "../../components/FieldError";
import { fieldErrorsOf, formMessage, FormOutcome, invalidProps, LoadError, useLoad, when } from "./common";

interface GuidelinesPageProps {
  slug: string;
  onAuthProblem: () => void;
}

interface Loaded {
  settings: ProjectSettings;
  versions: GuidelinesVersion[];
}

/** The guidelines annotators read, every earlier version, and an editor that writes the next one. */
export function GuidelinesPage({ slug, onAuthProblem }: GuidelinesPageProps) {
  const load = useCallback(
    async (): Promise<Loaded> => {
      const [settings, versions] = await Promise.all([consoleApi.settings(slug), consoleApi.guidelines(slug)]);
      return { settings, versions };
    },
    [slug],
  );
  const { data, error, retry } = useLoad(load, onAuthProblem);
  if (error) return <LoadError what="the guidelines" error={error} retry={retry} />;
  if (!data) return <p>Loading the guidelines…</p>;
  return <GuidelinesEditor slug={slug} initial={data} />;
}

export function GuidelinesEditor({ slug, initial }: { slug: string; initial: Loaded }) {
  const [current, setCurrent] = useState(initial.settings);
  const [versions, setVersions] = useState(initial.versions);
  const [text, setText] = useState(initial.settings.guidelines ?? "");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const unchanged = text === (current.guidelines ?? "");

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setErrors({});
    setMessage(null);
    setSaved(null);
    if (unchanged) {
      setSaved(`No change: this is version ${current.guidelines_version} already.`);
      return;
    }
    setBusy(true);
    try {
      const fresh = await consoleApi.updateSettings(slug, { guidelines: text });
      setCurrent(fresh);
      setSaved(`Saved as version ${fresh.guidelines_version}. New judgments record this version.`);
      try {
        setVersions(await consoleApi.guidelines(slug));
      } catch {
        // The save worked; the list shows the new version after a reload.
      }
    } catch (caught) {
      const fields = fieldErrorsOf(caught);
      setErrors(fields);
      setMessage(formMessage(errorMessage(caught), fields, (field) => field === "guidelines"));
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="console-columns">
      <form className="console-form" onSubmit={onSubmit} noValidate aria-labelledby="guidelines-heading">
        <h2 id="guidelines-heading">Write a new version</h2>
        <p className="hint">
          In force: version {current.guidelines_version}. Saving a changed text makes version{" "}
          {current.guidelines_version + 1}; earlier versions stay in the history.
        </p>
        <label htmlFor="guidelines-text">Guidelines</label>
        <textarea
          id="guidelines-text"
          rows={16}
          value={text}
          onChange={(e) => setText(e.target.value)}
          {...invalidProps("guidelines-text", errors.guidelines)}
        />
        <FieldError id="guidelines-text-error" messages={errors.guidelines} />
        <FormOutcome error={message} notice={saved} />
        <div className="submit-row">
          <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
            {busy ? "Saving…" : "Save as a new version"}
          </button>
          <button type="button" disabled={busy || unchanged} onClick={() => setText(current.guidelines ?? "")}>
            Discard edits
          </button>
        </div>
      </form>

      <section className="side-panel" aria-labelledby="versions-heading">
        <h2 id="versions-heading">Versions</h2>
        {versions.length === 0 && <p>No versions recorded yet.</p>}
        <ol className="version-list" reversed>
          {versions.map((version) => (
            <li key={version.version}>
              <details open={version.version === current.guidelines_version}>
                <summary>
                  Version {version.version}
                  {version.version === current.guidelines_version && <span className="badge status-done">in force</span>}{" "}
                  <span className="hint">
                    {when(version.created_at)}
                    {version.created_by ? ` by ${version.created_by}` : ""}
                  </span>
                </summary>
                <div className="plain-text version-text">{version.text || <em>(empty)</em>}</div>
                <button type="button" className="link-button" onClick={() => setText(version.text)}>
                  Copy version {version.version} into the editor
                </button>
              </details>
            </li>
          ))}
        </ol>
      </section>
    </div>
  );
}
