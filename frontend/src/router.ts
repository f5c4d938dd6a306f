import { useSyncExternalStore } from "react";

// A few routes do not need a routing library: the path lives in window.location and
// navigate() tells subscribers through the same popstate event the browser uses.

function subscribe(onChange: () => void): () => void {
  window.addEventListener("popstate", onChange);
  return () => window.removeEventListener("popstate", onChange);
}

export function usePathname(): string {
  return useSyncExternalStore(subscribe, () => window.location.pathname);
}

export function navigate(to: string, { replace = false } = {}): void {
  if (window.location.pathname === to) return;
  if (replace) window.history.replaceState(null, "", to);
  else window.history.pushState(null, "", to);
  window.dispatchEvent(new PopStateEvent("popstate"));
}

export type ConsoleTab = "rounds" | "quality";

/** `/projects/<slug>/<tab>` (slug known) or `/<tab>` (the first of the user's projects). */
export function matchConsole(path: string): { slug: string | null; tab: ConsoleTab } | null {
  const bare = /^\/(rounds|quality)\/?$/.exec(path);
  if (bare) return { slug: null, tab: bare[1] as ConsoleTab };
  const full = /^\/projects\/([^/]+)\/(rounds|quality)\/?$/.exec(path);
  return full ? { slug: decodeURIComponent(full[1]!), tab: full[2] as ConsoleTab } : null;
}

export function consolePath(slug: string, tab: ConsoleTab): string {
  return `/projects/${encodeURIComponent(slug)}/${tab}`;
}
