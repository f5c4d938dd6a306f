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

export const CONSOLE_TABS = [
  "rounds",
  "training",
  "quality",
  "exports",
  "settings",
  "guidelines",
  "members",
  "prompts",
] as const;
export type ConsoleTab = (typeof CONSOLE_TABS)[number];
/** The tabs about the project itself, grouped under one "Project" link. */
export const PROJECT_TABS: readonly ConsoleTab[] = ["settings", "guidelines", "members", "prompts"];

const TAB = CONSOLE_TABS.join("|");
const BARE = new RegExp(`^/(${TAB})/?$`);
const FULL = new RegExp(`^/projects/([^/]+)/(${TAB})/?$`);

/** `/projects/<slug>/<tab>` (slug known) or `/<tab>` (the first of the user's projects). */
export function matchConsole(path: string): { slug: string | null; tab: ConsoleTab } | null {
  const bare = BARE.exec(path);
  if (bare) return { slug: null, tab: bare[1] as ConsoleTab };
  const full = FULL.exec(path);
  return full ? { slug: decodeURIComponent(full[1]!), tab: full[2] as ConsoleTab } : null;
}

export function consolePath(slug: string, tab: ConsoleTab): string {
  return `/projects/${encodeURIComponent(slug)}/${tab}`;
}

/** `/chat` (the annotator's live conversations) or `/chat/<id>` (one of them). */
export function matchChat(path: string): { sessionId: number | null } | null {
  if (/^\/chat\/?$/.test(path)) return { sessionId: null };
  const one = /^\/chat\/(\d+)\/?$/.exec(path);
  return one ? { sessionId: Number(one[1]) } : null;
}

export function chatPath(sessionId: number): string {
  return `/chat/${sessionId}`;
}
