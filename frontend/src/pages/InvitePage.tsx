import { useState, type FormEvent } from "react";
import { ApiError, errorMessage, type FieldErrors } from "../api";
import { consoleApi } from "../api/console";
import { FieldError } from "../components/FieldError";
import { Link } from "../components/Link";

/** `/invite/<uid>/<token>`: the one-time link an admin sends a new member. */
export function matchInvite(path: string): { uid: string; token: string } | null {
  const found = /^\/invite\/([^/]+)\/([^/]+)\/?$/.exec(path);
  return found ? { uid: found[1]!, token: found[2]! } : null;
}

/** An invited person sets their password, then signs in as usual. */
export function InvitePage({ uid, token }: { uid: string; token: string }) {
  const [password, setPassword] = useState("");
  const [again, setAgain] = useState("");
  const [busy, setBusy] = useState(false);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<string | null>(null);
  const [done, setDone] = useState(false);

  async function onSubmit(event: FormEvent) {
    event.preventDefault();
    if (busy) return;
    setErrors({});
    setMessage(null);
    if (password !== again) {
      setErrors({ again: ["The two passwords differ."] });
      return;
    }
    setBusy(true);
    try {
      await consoleApi.acceptInvite({ uid, token, password });
      setDone(true);
    } catch (caught) {
      const fields = caught instanceof ApiError ? caught.fieldErrors : {};
      setErrors(fields);
      // A bad uid or token is about the link, not anything typed here: say so in the summary.
      const link = [...(fields.uid ?? []), ...(fields.token ?? [])];
      const about = link.join(" ");
      if (about) setMessage(`${about.charAt(0).toUpperCase()}${about.slice(1)}. Ask your admin for a new link.`);
      else if (!fields.password) setMessage(errorMessage(caught));
    } finally {
      setBusy(false);
    }
  }

  if (done) {
    return (
      <main className="page login">
        <h1>Your password is set</h1>
        <p role="status">You can sign in now.</p>
        <Link to="/login">Sign in</Link>
      </main>
    );
  }
  return (
    <main className="page login">
      <h1>Set your password</h1>
      <p className="hint">You were invited to Arbiter. Choose a password to finish setting up your account.</p>
      <form onSubmit={onSubmit} noValidate>
        <label htmlFor="invite-password">New password</label>
        <input
          id="invite-password"
          type="password"
          autoComplete="new-password"
          value={password}
          onChange={(e) => setPassword(e.target.value)}
          aria-invalid={errors.password ? true : undefined}
          aria-describedby={errors.password ? "invite-password-error" : undefined}
        />
        <FieldError id="invite-password-error" messages={errors.password} />
        <label htmlFor="invite-again">The same password again</label>
        <input
          id="invite-again"
          type="password"
          autoComplete="new-password"
          value={again}
          onChange={(e) => setAgain(e.target.value)}
          aria-invalid={errors.again ? true : undefined}
          aria-describedby={errors.again ? "invite-again-error" : undefined}
        />
        <FieldError id="invite-again-error" messages={errors.again} />
        {message && (
          <p role="alert" className="error">
            {message}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy}>
          {busy ? "Saving…" : "Set password"}
        </button>
      </form>
    </main>
  );
}
