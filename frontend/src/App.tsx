import { lazy, Suspense, useCallback, useEffect, useState } from "react";
import { api, ApiError, errorMessage } from "./api";
import type { Me } from "./api/types";
import { Header, isResearcher } from "./components/Header";
import { ChatPage } from "./pages/ChatPage";
import { ComparePage } from "./pages/ComparePage";
import { InvitePage, matchInvite } from "./pages/InvitePage";
import { LoginPage } from "./pages/LoginPage";
import { matchChat, matchConsole, navigate, usePathname } from "./router";

// Researchers' pages (and their chart library) load only when someone opens them.
const ConsolePage = lazy(() => import("./pages/console/ConsolePage"));

/** undefined: not known yet; null: nobody is logged in. */
type Session = Me | null | undefined;

export function App() {
  const path = usePathname();
  const [user, setUser] = useState<Session>(undefined);
  const [bootError, setBootError] = useState<string | null>(null);

  const checkSession = useCallback(async () => {
    setBootError(null);
    try {
      setUser(await api.me());
    } catch (error) {
      if (error instanceof ApiError && error.isAuthProblem) setUser(null);
      else setBootError(errorMessage(error));
    }
  }, []);

  useEffect(() => {
    void checkSession();
  }, [checkSession]);

  useEffect(() => {
    if (user === null && path !== "/login" && !matchInvite(path)) navigate("/login", { replace: true });
    if (user && path === "/login") navigate("/", { replace: true });
  }, [user, path]);

  if (user === undefined) {
    return (
      <main className="page status">
        {bootError ? (
          <>
            <p role="alert" className="error">
              Could not reach Arbiter: {bootError}
            </p>
            <button type="button" onClick={() => void checkSession()}>
              Try again
            </button>
          </>
        ) : (
          <p>Loading…</p>
        )}
      </main>
    );
  }

  const invite = matchInvite(path);
  if (invite) return <InvitePage uid={invite.uid} token={invite.token} />;

  if (user === null) {
    return (
      <LoginPage
        onLoggedIn={(me) => {
          setUser(me);
          navigate("/");
        }}
      />
    );
  }

  const consoleRoute = isResearcher(user) ? matchConsole(path) : null;
  const chatRoute = matchChat(path);
  return (
    <>
      <Header user={user} onLoggedOut={() => setUser(null)} />
      {path === "/" ? (
        <ComparePage onAuthProblem={checkSession} />
      ) : chatRoute ? (
        <ChatPage sessionId={chatRoute.sessionId} onAuthProblem={checkSession} />
      ) : consoleRoute ? (
        <Suspense fallback={<main className="page status">Loading…</main>}>
          <ConsolePage slug={consoleRoute.slug} tab={consoleRoute.tab} onAuthProblem={checkSession} />
        </Suspense>
      ) : (
        <NotFound />
      )}
    </>
  );
}

function NotFound() {
  return (
    <main className="page status">
      <h1>Page not found</h1>
      <a
        href="/"
        onClick={(event) => {
          event.preventDefault();
          navigate("/");
        }}
      >
        Go to the comparison page
      </a>
    </main>
  );
}
