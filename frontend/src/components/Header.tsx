import { useState } from "react";
import { api, errorMessage } from "../api";
import type { Me } from "../api/types";

export function Header({ user, onLoggedOut }: { user: Me; onLoggedOut: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function logout() {
    setBusy(true);
    setError(null);
    try {
      await api.logout();
      onLoggedOut();
    } catch (caught) {
      setBusy(false);
      setError(`Could not sign out: ${errorMessage(caught)}`);
    }
  }

  return (
    <header className="app-header">
      <span className="brand">Arbiter</span>
      <span className="user">
        {user.username} {user.role && <span className="role">({user.role})</span>}
      </span>
      {error && (
        <span role="alert" className="error">
          {error}
        </span>
      )}
      <button type="button" onClick={() => void logout()} disabled={busy}>
        Log out
      </button>
    </header>
  );
}
