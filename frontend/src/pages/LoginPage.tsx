import { useState, type FormEvent } from "react";
import { api, ApiError, errorMessage, type FieldErrors } from "../api";
import type { Me } from "../api/types";
import { FieldError } from "../components/FieldError";

export function LoginPage({ onLoggedIn }: { onLoggedIn: (user: Me) => void }) {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<string | null>(null);
  const [fieldErrors, setFieldErrors] = useState<FieldErrors>({});

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setBusy(true);
    setMessage(null);
    setFieldErrors({});
    try {
      onLoggedIn(await api.login({ username, password }));
    } catch (error) {
      setBusy(false);
      const fields = error instanceof ApiError ? error.fieldErrors : {};
      setFieldErrors(fields);
      setMessage(formMessage(errorMessage(error), fields));
    }
  }

  return (
    <main className="page login">
      <h1>Sign in to Arbiter</h1>
      <form onSubmit={onSubmit} noValidate>
        <label htmlFor="username">Username</label>
        <input
          id="username"
          name="username"
          autoComplete="username"
          autoFocus
          value={username}
          onChange={(event) => setUsername(event.target.value)}
          aria-invalid={fieldErrors.username ? true : undefined}
          aria-describedby={fieldErrors.username ? "username-error" : undefined}
        />
        <FieldError id="username-error" messages={fieldErrors.username} />

        <label htmlFor="password">Password</label>
        <input
          id="password"
          name="password"
          type="password"
          autoComplete="current-password"
          value={password}
          onChange={(event) => setPassword(event.target.value)}
          aria-invalid={fieldErrors.password ? true : undefined}
          aria-describedby={fieldErrors.password ? "password-error" : undefined}
        />
        <FieldError id="password-error" messages={fieldErrors.password} />

        {message && (
          <p role="alert" className="error">
            {message}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

/**
 * The form-level message: the server's detail plus errors not tied to a visible field,
 * leaving out text already shown under a field (wrong credentials come as both).
 */
function formMessage(detail: string, fields: FieldErrors): string | null {
  const underFields = [...(fields.username ?? []), ...(fields.password ?? [])];
  const extra = Object.entries(fields)
    .filter(([field]) => field !== "username" && field !== "password")
    .flatMap(([, messages]) => messages);
  const parts = [...new Set([detail, ...extra])].filter((text) => !underFields.includes(text));
  return parts.length ? parts.join(" ") : null;
}
