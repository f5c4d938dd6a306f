import { useCallback, useEffect, useState } from "react";
import { api, ApiError, errorMessage } from "./api";
import type { Me } from "./api/types";
import { Header } from "./components/Header";
import { ComparePage } from "./pages/ComparePage";
import { LoginPage } from "./pages/LoginPage";
import { navigate, usePathname } from "./router";

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
    if (user === null && path !== "/login") navigate("/login", { replace: true });
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

  return (
    <>
      <Header user={user} onLoggedOut={() => setUser(null)} />
      {path === "/" ? <ComparePage onAuthProblem={checkSession} /> : <NotFound />}
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
