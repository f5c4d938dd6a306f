import { useState } from "react";
import { api, errorMessage } from "../api";
import type { Me } from "../api/types";
import { consolePath, matchChat, matchConsole, PROJECT_TABS, usePathname, type ConsoleTab } from "../router";
import { Link } from "./Link";

export function isResearcher(user: Me): boolean {
  return user.role === "researcher" || user.role === "admin";
}

export function Header({ user, onLoggedOut }: { user: Me; onLoggedOut: () => void }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const path = usePathname();
  const here = matchConsole(path);
  // Within a project's console, Rounds and Quality stay in that project.
  const to = (tab: ConsoleTab) => (here?.slug ? consolePath(here.slug, tab) : `/${tab}`);

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
      <nav aria-label="Main">
        <Link to="/" current={path === "/"}>
          Annotate
        </Link>
        <Link to="/chat" current={matchChat(path) !== null}>
          Chat
        </Link>
        {isResearcher(user) && (
          <>
            <Link to={to("rounds")} current={here?.tab === "rounds"}>
              Rounds
            </Link>
            <Link to={to("training")} current={here?.tab === "training"}>
              Training
            </Link>
            <Link to={to("quality")} current={here?.tab === "quality"}>
              Quality
            </Link>
            <Link to={to("exports")} current={here?.tab === "exports"}>
              Exports
            </Link>
            <Link to={to("settings")} current={!!here && PROJECT_TABS.includes(here.tab)}>
              Project
            </Link>
          </>
        )}
      </nav>
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
