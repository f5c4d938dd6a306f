import { useRef, useState, type FormEvent } from "react";
import { errorMessage, type FieldErrors } from "../../api";
import { consoleApi } from "../../api/console";
import type { PromptImportReport } from "../../api/types";
import { FieldError } from "../../components/FieldError";
import { fieldErrorsOf, formMessage, invalidProps } from "./common";

/** Lines listed in words: "3, 7 and 9". */
function lineList(lines: number[]): string {
  if (lines.length <= 1) return lines.join("");
  return `${lines.slice(0, -1).join(", ")} and ${lines[lines.length - 1]}`;
}

/** Upload a JSONL or CSV file of prompts; every line that could not be used is listed with why. */
export function PromptsPage({ slug }: { slug: string }) {
  const input = useRef<HTMLInputElement>(null);
  const [file, setFile] = useState<File | null>(null);
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<string | null>(null);
  const [report, setReport] = useState<{ name: string; report: PromptImportReport } | null>(null);

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setErrors({});
    setMessage(null);
    if (!file) {
      setErrors({ file: ["Choose a .jsonl or .csv file first."] });
      input.current?.focus();
      return;
    }
    setBusy(true);
    setReport(null);
    try {
      setReport({ name: file.name, report: await consoleApi.importPrompts(slug, file) });
    } catch (caught) {
      const fields = fieldErrorsOf(caught);
      setErrors(fields);
      setMessage(formMessage(errorMessage(caught), fields, (field) => field === "file"));
      input.current?.focus();
    } finally {
      setBusy(false);
    }
  }

  return (
    <div className="console-columns">
      <form className="console-form" onSubmit={onSubmit} noValidate aria-labelledby="import-heading">
        <h2 id="import-heading">Import prompts</h2>
        <p className="hint">
          JSON Lines: one object per line with <code>prompt</code> (and optionally <code>system</code>, <code>id</code>,{" "}
          <code>metadata</code>) or <code>messages</code> (a list of <code>role</code>/<code>content</code>). CSV: a header
          row with <code>prompt</code> and optionally <code>system</code>, <code>id</code>, <code>metadata</code>. Up to 20
          MB. Prompts the project already has are counted as duplicates, not imported twice.
        </p>
        <label htmlFor="import-file">Prompt file</label>
        <input
          ref={input}
          id="import-file"
          type="file"
          accept=".jsonl,.ndjson,.json,.csv"
          onChange={(e) => setFile(e.target.files?.[0] ?? null)}
          {...invalidProps("import-file", errors.file)}
        />
        <FieldError id="import-file-error" messages={errors.file} />
        {message && (
          <p role="alert" className="error">
            {message}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy} aria-busy={busy}>
          {busy ? "Importing…" : "Import"}
        </button>
      </form>

      {report && <ImportReport name={report.name} report={report.report} />}
    </div>
  );
}

export function ImportReport({ name, report }: { name: string; report: PromptImportReport }) {
  const { created, duplicates, errors } = report;
  return (
    <section className="side-panel" aria-labelledby="report-heading">
      <h2 id="report-heading">Report for {name}</h2>
      <p role="status">
        {created} {created === 1 ? "prompt" : "prompts"} imported
        {duplicates.length > 0 && `, ${duplicates.length} ${duplicates.length === 1 ? "duplicate" : "duplicates"} skipped`}
        {errors.length > 0 && `, ${errors.length} ${errors.length === 1 ? "line" : "lines"} with errors`}.
      </p>
      {duplicates.length > 0 && <p className="hint">Duplicate lines: {lineList(duplicates)}.</p>}
      {errors.length > 0 && (
        <div className="table-scroll" tabIndex={0} role="region" aria-labelledby="line-errors-caption">
          <table className="data-table left wrap">
            <caption id="line-errors-caption">Lines that were not imported</caption>
            <thead>
              <tr>
                <th scope="col">Line</th>
                <th scope="col">Field</th>
                <th scope="col">Problem</th>
              </tr>
            </thead>
            <tbody>
              {errors.map((error, index) => (
                <tr key={`${error.line}-${index}`}>
                  <th scope="row">{error.line}</th>
                  <td>
                    <code>{error.field}</code>
                  </td>
                  <td>{error.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
