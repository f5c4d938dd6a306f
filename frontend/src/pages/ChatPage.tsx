import { useCallback, useEffect, useState } from "react";
import { api, ApiError, errorMessage } from "../api";
import type { ProjectSummary, SessionSummary } from "../api/types";
import { Link } from "../components/Link";
import { chatPath, navigate } from "../router";
import { LiveChat } from "./LiveChat";

interface ChatPageProps {
  /** A session to open; null lists the annotator's sessions. */
  sessionId: number | null;
  onAuthProblem: () => void;
}

/** `/chat`: your live conversations, and a new one; `/chat/<id>`: one conversation. */
export function ChatPage({ sessionId, onAuthProblem }: ChatPageProps) {
  if (sessionId !== null) return <LiveChat key={sessionId} sessionId={sessionId} onAuthProblem={onAuthProblem} />;
  return <ChatList onAuthProblem={onAuthProblem} />;
}

const PROJECT_KEY = "arbiter.chat.project";
const REPLIES_KEY = "arbiter.chat.replies";

function rememberedReplies(): number {
  const value = Number(localStorage.getItem(REPLIES_KEY));
  return value >= 2 && value <= 4 ? value : 2;
}

type Load<T> = { status: "loading" } | { status: "failed"; error: unknown } | { status: "ready"; value: T };

function ChatList({ onAuthProblem }: { onAuthProblem: () => void }) {
  const [projects, setProjects] = useState<Load<ProjectSummary[]>>({ status: "loading" });
  const [slug, setSlug] = useState<string | null>(null);
  const [sessions, setSessions] = useState<Load<SessionSummary[]>>({ status: "loading" });
  const [starting, setStarting] = useState(false);
  const [startError, setStartError] = useState<string | null>(null);
  const [replies, setReplies] = useState(rememberedReplies);

  const failed = useCallback(
    (error: unknown) => {
      if (error instanceof ApiError && error.isAuthProblem) onAuthProblem();
    },
    [onAuthProblem],
  );

  const loadProjects = useCallback(async () => {
    setProjects({ status: "loading" });
    try {
      const list = await api.projects();
      setProjects({ status: "ready", value: list });
      const remembered = localStorage.getItem(PROJECT_KEY);
      setSlug(list.find((p) => p.slug === remembered)?.slug ?? list[0]?.slug ?? null);
    } catch (error) {
      setProjects({ status: "failed", error });
      failed(error);
    }
  }, [failed]);

  const loadSessions = useCallback(
    async (project: string) => {
      setSessions({ status: "loading" });
      try {
        setSessions({ status: "ready", value: await api.sessions(project) });
      } catch (error) {
        setSessions({ status: "failed", error });
        failed(error);
      }
    },
    [failed],
  );

  useEffect(() => {
    void loadProjects();
  }, [loadProjects]);

  useEffect(() => {
    if (slug) void loadSessions(slug);
  }, [slug, loadSessions]);

  async function start() {
    if (!slug) return;
    setStarting(true);
    setStartError(null);
    try {
      const session = await api.startSession(slug, replies);
      navigate(chatPath(session.id));
    } catch (error) {
      setStartError(`Could not start a conversation: ${errorMessage(error)}`);
      failed(error);
      setStarting(false);
    }
  }

  if (projects.status === "loading") return <main className="page status">Loading…</main>;
  if (projects.status === "failed") {
    return (
      <main className="page status">
        <h1>Live chat</h1>
        <p role="alert" className="error">
          Could not load your projects: {errorMessage(projects.error)}
        </p>
        <button type="button" onClick={() => void loadProjects()}>
          Try again
        </button>
      </main>
    );
  }
  if (projects.value.length === 0) {
    return (
      <main className="page status">
        <h1>Live chat</h1>
        <p>You are not a member of any project yet.</p>
      </main>
    );
  }

  const open = sessions.status === "ready" ? sessions.value.filter((s) => s.status === "open") : [];
  const ended = sessions.status === "ready" ? sessions.value.filter((s) => s.status === "ended") : [];
  return (
    <main className="page chat-list">
      <h1>Live chat</h1>
      <p className="hint">
        Chat with the model: for each of your messages two (or more) replies are written side by side, you judge
        which is better (or rank them), and the conversation goes on from the best one.
      </p>
      {projects.value.length > 1 && (
        <div className="chat-project">
          <label htmlFor="chat-project">Project</label>
          <select
            id="chat-project"
            value={slug ?? ""}
            onChange={(event) => {
              setSlug(event.target.value);
              localStorage.setItem(PROJECT_KEY, event.target.value);
            }}
          >
            {projects.value.map((p) => (
              <option key={p.slug} value={p.slug}>
                {p.name}
              </option>
            ))}
          </select>
        </div>
      )}
      <div className="chat-replies">
        <label htmlFor="chat-replies">Replies per message</label>
        <select
          id="chat-replies"
          value={replies}
          onChange={(event) => {
            setReplies(Number(event.target.value));
            localStorage.setItem(REPLIES_KEY, event.target.value);
          }}
          aria-describedby="chat-replies-hint"
        >
          {[2, 3, 4].map((k) => (
            <option key={k} value={k}>
              {k}
            </option>
          ))}
        </select>
        <span id="chat-replies-hint" className="hint">
          Two are compared on the scale; three or four are ranked best to worst.
        </span>
      </div>
      <div className="submit-row">
        <button type="button" className="primary" onClick={() => void start()} disabled={starting || !slug}>
          {starting ? "Starting…" : "Start a new conversation"}
        </button>
      </div>
      {startError && (
        <p role="alert" className="error">
          {startError}
        </p>
      )}

      {sessions.status === "loading" && <p className="status">Loading your conversations…</p>}
      {sessions.status === "failed" && (
        <div className="status">
          <p role="alert" className="error">
            Could not load your conversations: {errorMessage(sessions.error)}
          </p>
          <button type="button" onClick={() => slug && void loadSessions(slug)}>
            Try again
          </button>
        </div>
      )}
      {sessions.status === "ready" && (
        <>
          <SessionList heading="Open conversations" sessions={open} empty="No open conversations." />
          {ended.length > 0 && <SessionList heading="Ended conversations" sessions={ended} empty="" />}
        </>
      )}
    </main>
  );
}

function SessionList({ heading, sessions, empty }: { heading: string; sessions: SessionSummary[]; empty: string }) {
  const id = `sessions-${heading.split(" ")[0]!.toLowerCase()}`;
  return (
    <section aria-labelledby={id} className="session-list">
      <h2 id={id}>{heading}</h2>
      {sessions.length === 0 ? (
        <p className="hint">{empty}</p>
      ) : (
        <ul>
          {sessions.map((s) => (
            <li key={s.id}>
              <Link to={chatPath(s.id)}>{s.title || "(no message yet)"}</Link>{" "}
              <span className="hint">
                {s.turns === 1 ? "1 turn" : `${s.turns} turns`}, started {new Date(s.created_at).toLocaleString()}
              </span>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
