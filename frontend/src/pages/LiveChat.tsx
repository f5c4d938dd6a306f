import { useCallback, useEffect, useRef, useState, type FormEvent, type KeyboardEvent as ReactKeyboardEvent } from "react";
import { api, ApiError, errorMessage, newIdempotencyKey, type FieldErrors } from "../api";
import { StreamBroken, streamLiveTurn, type LiveStreamEvent } from "../api/stream";
import type { Assignment, Session, SessionMessage } from "../api/types";
import { answerFrom } from "../annotation/answer";
import {
  clearDraft,
  clearMessageDraft,
  loadDraft,
  loadMessageDraft,
  saveDraft,
  saveMessageDraft,
  type Draft,
} from "../annotation/draft";
import { CompletionText } from "../components/CompletionText";
import { FieldError } from "../components/FieldError";
import { JudgmentExtras } from "../components/JudgmentExtras";
import { Link } from "../components/Link";
import { Ranking } from "../components/Ranking";
import { Scale } from "../components/Scale";
import { stateAfterDone, StreamPair, type StreamState } from "../components/StreamPair";
import { activatesNatively, shouldIgnoreShortcut, useDocumentKeys } from "../keyboard";
import { describeApiError } from "./JudgeForm";

/** The open turn's replies as far as they have streamed; labels A, B, ... only (blind). */
interface LivePair {
  assignment: Assignment;
  texts: Record<string, string>;
  states: Record<string, StreamState>;
}

// A judged stream stops within a poll or two; never leave the annotator waiting much longer.
const STOP_WAIT_MS = 15_000;

function settledOrTimeout(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface JudgmentDraft {
  assignmentId: number;
  draft: Draft;
  restored: boolean;
}

interface Failure {
  message: string;
  fieldErrors: FieldErrors;
}

interface LiveChatProps {
  sessionId: number;
  onAuthProblem: () => void;
}

/**
 * A live multi-turn session: the annotator writes, two (or up to four) replies stream in side
 * by side, the annotator judges them on the scale or ranks them (also while they stream), the
 * chosen reply joins the conversation and the next message continues from it.
 */
export function LiveChat({ sessionId, onAuthProblem }: LiveChatProps) {
  const [session, setSession] = useState<Session | null>(null);
  const [loadError, setLoadError] = useState<unknown>(null);
  const [pair, setPair] = useState<LivePair | null>(null);
  const [streaming, setStreaming] = useState(false);
  const [streamProblem, setStreamProblem] = useState<string | null>(null);
  const [judgment, setJudgment] = useState<JudgmentDraft | null>(null);
  const [saving, setSaving] = useState(false);
  const [joining, setJoining] = useState(false);
  const [failure, setFailure] = useState<Failure | null>(null);
  const [message, setMessage] = useState(() => loadMessageDraft(sessionId));
  const [sending, setSending] = useState(false);
  const [sendError, setSendError] = useState<string | null>(null);
  const [ending, setEnding] = useState(false);
  const [endError, setEndError] = useState<string | null>(null);
  const [showShortcuts, setShowShortcuts] = useState(false);
  const stream = useRef<AbortController | null>(null);
  // Settles when the current stream has ended and the server has stored what it streamed.
  const streamDone = useRef<Promise<void>>(Promise.resolve());
  const shownAt = useRef(0);
  const inFlight = useRef(false);
  const pairId = useRef<number | null>(null);
  const composer = useRef<HTMLTextAreaElement | null>(null);

  // Refs, so the callbacks below stay the same and the load effect runs once per session.
  const authProblem = useRef(onAuthProblem);
  useEffect(() => {
    authProblem.current = onAuthProblem;
    pairId.current = pair?.assignment.id ?? null;
  });

  const authCheck = useCallback((error: unknown) => {
    if (error instanceof ApiError && error.isAuthProblem) authProblem.current();
  }, []);

  const reload = useCallback(async (): Promise<Session | null> => {
    try {
      const fresh = await api.session(sessionId);
      setSession(fresh);
      setLoadError(null);
      return fresh;
    } catch (error) {
      setLoadError(error);
      authCheck(error);
      return null;
    }
  }, [sessionId, authCheck]);

  /** A new pair to judge: its draft judgment (restored from this device if there is one). */
  const showPair = useCallback((assignment: Assignment, state: StreamState) => {
    setPair(pairFrom(assignment, state));
    setJudgment((current) =>
      current?.assignmentId === assignment.id
        ? current
        : { assignmentId: assignment.id, ...loadDraft(assignment, newIdempotencyKey) },
    );
    shownAt.current = performance.now();
  }, []);

  /** After a reload: show the pair the server holds for judging, or none. */
  const syncPair = useCallback(
    (fresh: Session | null) => {
      if (!fresh) return;
      const held = fresh.status === "open" && fresh.turn?.state === "judging" ? fresh.turn.assignment : null;
      if (!held) setPair(null);
      else if (pairId.current !== held.id) showPair(held, "finished");
    },
    [showPair],
  );

  const apply = useCallback(
    (event: LiveStreamEvent) => {
      switch (event.event) {
        case "start":
          showPair(event.data.assignment, "writing");
          break;
        case "delta": {
          const { label, text } = event.data;
          setPair((p) => p && { ...p, texts: { ...p.texts, [label]: (p.texts[label] ?? "") + text } });
          break;
        }
        case "done": {
          const { label, finish_reason, incomplete } = event.data;
          setPair((p) => p && { ...p, states: { ...p.states, [label]: stateAfterDone(finish_reason, incomplete) } });
          break;
        }
        case "ready": {
          // The stored pair: the same texts, now final.
          const { assignment } = event.data;
          setPair((p) => ({ ...pairFrom(assignment, "finished"), states: p?.states ?? {} }));
          break;
        }
        case "stopped":
          break; // judged here (or redrawn elsewhere): the session is reloaded below
        case "error":
          setStreamProblem(event.data.message);
          setPair(null);
          break;
      }
    },
    [showPair],
  );

  const startStream = useCallback(
    (regenerate: boolean) => {
      stream.current?.abort();
      const controller = new AbortController();
      stream.current = controller;
      setStreamProblem(null);
      setFailure(null);
      setStreaming(true);
      if (regenerate) setPair(null);
      const run = async () => {
        try {
          const closing = await streamLiveTurn(sessionId, { regenerate, signal: controller.signal }, (event) => {
            if (!controller.signal.aborted) apply(event);
          });
          // Judged, redrawn elsewhere, or failed: the server says where the turn is now.
          if (closing !== "ready" && !controller.signal.aborted) syncPair(await reload());
        } catch (error) {
          if (controller.signal.aborted) return;
          setPair(null);
          setStreamProblem(streamProblemText(error));
          authCheck(error);
          syncPair(await reload());
        } finally {
          if (stream.current === controller) {
            stream.current = null;
            setStreaming(false);
          }
        }
      };
      streamDone.current = run();
    },
    [sessionId, apply, reload, authCheck, syncPair],
  );

  useEffect(() => {
    let cancelled = false; // StrictMode mounts twice: only the second load may open a stream
    void (async () => {
      const fresh = await reload();
      if (cancelled) return;
      if (fresh?.status === "open" && fresh.turn?.state === "awaiting_candidates") startStream(false);
      else syncPair(fresh);
    })();
    return () => {
      cancelled = true;
      stream.current?.abort(); // leaving mid-stream: the server cancels the model requests
    };
  }, [reload, startStream, syncPair]);

  const updateJudgment = useCallback((change: Partial<Draft>) => {
    setJudgment((current) => {
      if (!current) return current;
      const draft = { ...current.draft, ...change };
      saveDraft(current.assignmentId, draft);
      return { ...current, draft };
    });
  }, []);

  const submit = useCallback(async () => {
    if (!pair || !judgment || inFlight.current || judgment.assignmentId !== pair.assignment.id) return;
    const answer = answerFrom(pair.assignment, judgment.draft, performance.now() - shownAt.current);
    if (!answer.ok) {
      setFailure({ message: answer.message, fieldErrors: {} });
      return;
    }
    inFlight.current = true;
    setSaving(true);
    setFailure(null);
    try {
      await api.judge(pair.assignment.id, answer.request);
      clearDraft(pair.assignment.id);
      setJoining(true);
      // Judged mid-stream: the stream now stops and stores the chosen reply as it was shown.
      await settledOrTimeout(streamDone.current, STOP_WAIT_MS);
      syncPair(await reload());
      setJudgment(null);
    } catch (error) {
      setFailure(
        error instanceof ApiError
          ? { message: describeApiError(error), fieldErrors: error.fieldErrors }
          : { message: errorMessage(error), fieldErrors: {} },
      );
      authCheck(error);
      if (error instanceof ApiError && (error.status === 409 || error.status === 404)) syncPair(await reload());
    } finally {
      inFlight.current = false;
      setSaving(false);
      setJoining(false);
    }
  }, [pair, judgment, reload, authCheck, syncPair]);

  async function send() {
    if (sending) return;
    if (!message.trim()) {
      setSendError("Write a message first.");
      return;
    }
    setSending(true);
    setSendError(null);
    try {
      const fresh = await api.sendMessage(sessionId, message);
      clearMessageDraft(sessionId);
      setMessage("");
      setSession(fresh);
      startStream(false);
    } catch (error) {
      // The message stays in the box (and on this device) to send again.
      setSendError(error instanceof ApiError ? describeApiError(error) : errorMessage(error));
      authCheck(error);
    } finally {
      setSending(false);
    }
  }

  async function end() {
    setEnding(true);
    setEndError(null);
    stream.current?.abort();
    try {
      const fresh = await api.endSession(sessionId);
      setSession(fresh);
      setPair(null);
      setStreamProblem(null);
      clearMessageDraft(sessionId);
    } catch (error) {
      setEndError(`Could not end the conversation: ${errorMessage(error)}`);
      authCheck(error);
    } finally {
      setEnding(false);
    }
  }

  useDocumentKeys((event) => {
    if (shouldIgnoreShortcut(event)) return;
    if (event.key === "?") {
      event.preventDefault();
      setShowShortcuts((shown) => !shown);
    } else if (event.key === "Escape") {
      setShowShortcuts(false);
    } else if (event.key === "Enter" && pair?.assignment.interface === "ranking" && !activatesNatively(event.target)) {
      // The pairwise scale handles its own Enter.
      event.preventDefault();
      void submit();
    }
  });

  const turnState = session?.turn?.state;
  const composing = session?.status === "open" && !pair && (turnState === undefined || turnState === "judged");
  useEffect(() => {
    if (composing) composer.current?.focus();
  }, [composing]);

  if (!session) {
    return (
      <main className="page chat">
        {loadError ? (
          <div className="status">
            <h1>Could not open this conversation</h1>
            <p role="alert" className="error">
              {errorMessage(loadError)}
            </p>
            <button type="button" onClick={() => void reload()}>
              Try again
            </button>{" "}
            <Link to="/chat">All conversations</Link>
          </div>
        ) : (
          <p className="status">Loading the conversation…</p>
        )}
      </main>
    );
  }

  const ended = session.status === "ended";
  const waiting = !ended && !pair && (streaming || turnState === "awaiting_candidates");
  const draft = judgment?.assignmentId === pair?.assignment.id ? judgment?.draft : undefined;
  const pending = pair && draft ? answerFrom(pair.assignment, draft, 0) : null;
  const locked = saving || joining;
  const ranked = pair?.assignment.interface === "ranking";

  return (
    <main className="page chat">
      <p className="chat-back">
        <Link to="/chat">← All conversations</Link>
      </p>
      <h1 id="chat-heading">Live chat</h1>
      <Transcript messages={session.messages} />

      {waiting && (
        <section className="chat-waiting" aria-labelledby="waiting-heading">
          <h2 id="waiting-heading" className="visually-hidden">
            Replies
          </h2>
          {streamProblem ? (
            <div className="error">
              <p role="alert">{streamProblem}</p>
              <p className="hint">Your message is saved in the conversation.</p>
              <button type="button" onClick={() => startStream(false)} disabled={streaming}>
                Try again
              </button>
            </div>
          ) : (
            <p role="status">{streaming ? `Asking for ${replyCount(session.candidates_per_turn)} replies…` : "Waiting for replies."}</p>
          )}
          {!streaming && !streamProblem && (
            <button type="button" onClick={() => startStream(false)}>
              Get replies
            </button>
          )}
        </section>
      )}

      {pair && draft && (
        <section className="live-turn" aria-labelledby="live-turn-heading">
          <h2 id="live-turn-heading">{ranked ? "Rank the replies, best first" : "Which reply is better?"}</h2>
          {pair.assignment.project.guidelines && (
            <details className="guidelines">
              <summary>Guidelines (version {pair.assignment.guidelines_version})</summary>
              <div className="plain-text">{pair.assignment.project.guidelines}</div>
            </details>
          )}
          <p className="hint">
            {ranked
              ? "You may rank while the replies are still being written. The reply you rank first continues the conversation."
              : "You may judge while the replies are still being written. The better reply continues the conversation (after a tie or two bad replies, reply A does)."}
          </p>
          {judgment?.restored && (
            <p className="notice" role="status">
              Your unsent judgment of these replies was restored from this device.
            </p>
          )}
          <StreamPair
            candidates={pair.assignment.candidates.map((c) => ({
              label: c.label,
              content: pair.texts[c.label] ?? "",
              state: pair.states[c.label] ?? "finished",
            }))}
          />
          {ranked ? (
            <fieldset className="choice" disabled={locked}>
              <legend>Your ranking</legend>
              <Ranking
                candidates={pair.assignment.candidates.map((c) => ({ ...c, content: pair.texts[c.label] ?? "" }))}
                order={draft.ranking}
                onChange={(ranking) => updateJudgment({ ranking })}
                disabled={locked}
                describedBy={failure?.fieldErrors.ranking ? "ranking-error" : undefined}
              />
              <FieldError id="ranking-error" messages={failure?.fieldErrors.ranking} />
            </fieldset>
          ) : (
            <fieldset className="choice" disabled={locked}>
              <legend>Your judgment</legend>
              <Scale
                points={pair.assignment.scale}
                value={draft.bothBad ? null : draft.choice}
                onChange={(choice) => updateJudgment({ choice, bothBad: false })}
                onSubmit={() => void submit()}
                disabled={locked}
                describedBy={failure?.fieldErrors.choice ? "choice-error" : undefined}
              />
              <FieldError id="choice-error" messages={failure?.fieldErrors.choice} />
              {pair.assignment.allow_both_bad && (
                <label className="both-bad">
                  <input
                    type="checkbox"
                    checked={draft.bothBad}
                    onChange={(event) => updateJudgment({ bothBad: event.target.checked, choice: null })}
                  />
                  Both replies are bad
                </label>
              )}
            </fieldset>
          )}
          <fieldset className="extras-fieldset" disabled={locked}>
            <legend className="visually-hidden">Flags and comment</legend>
            <JudgmentExtras
              comment={draft.comment}
              onCommentChange={(comment) => updateJudgment({ comment })}
              flags={draft.flags}
              onFlagsChange={(flags) => updateJudgment({ flags })}
              fieldErrors={failure?.fieldErrors ?? {}}
            />
          </fieldset>
          <div className="submit-row">
            <button
              type="button"
              className="primary"
              onClick={() => void submit()}
              disabled={!pending?.ok || locked}
              aria-busy={locked}
              aria-describedby={pending && !pending.ok ? "judge-hint" : undefined}
            >
              {joining ? "Continuing…" : saving ? "Saving…" : "Submit"}
            </button>
            {pending && !pending.ok && (
              <span id="judge-hint" className="hint">
                {pending.message}
              </span>
            )}
            <button type="button" onClick={() => startStream(true)} disabled={locked}>
              {ranked ? "Regenerate the replies" : "Regenerate both replies"}
            </button>
          </div>
          {failure && (
            <p role="alert" className="error">
              {failure.message}
            </p>
          )}
        </section>
      )}

      {composing && (
        <form
          className="composer"
          onSubmit={(event: FormEvent) => {
            event.preventDefault();
            void send();
          }}
          noValidate
        >
          <label htmlFor="chat-message">{session.messages.some((m) => m.role === "user") ? "Your next message" : "Your message"}</label>
          <textarea
            id="chat-message"
            ref={composer}
            rows={3}
            value={message}
            disabled={sending}
            onChange={(event) => {
              setMessage(event.target.value);
              saveMessageDraft(sessionId, event.target.value);
            }}
            onKeyDown={(event: ReactKeyboardEvent<HTMLTextAreaElement>) => {
              if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
                event.preventDefault();
                void send();
              }
            }}
            aria-describedby={sendError ? "send-error composer-hint" : "composer-hint"}
            aria-invalid={sendError ? true : undefined}
          />
          <p id="composer-hint" className="hint">
            Enter sends, Shift+Enter starts a new line. What you type is kept on this device until it is sent.
          </p>
          {sendError && (
            <p id="send-error" role="alert" className="error">
              {sendError}
            </p>
          )}
          <button type="submit" className="primary" disabled={sending} aria-busy={sending}>
            {sending ? "Sending…" : "Send"}
          </button>
        </form>
      )}

      {ended ? (
        <div className="notice chat-ended">
          <p>This conversation has ended.</p>
          <Link to="/chat">Start or continue another conversation</Link>
        </div>
      ) : (
        <div className="chat-actions">
          <button type="button" onClick={() => void end()} disabled={ending || locked}>
            {ending ? "Ending…" : "End conversation"}
          </button>
          <button type="button" className="link-button" onClick={() => setShowShortcuts((shown) => !shown)}>
            Keyboard shortcuts (?)
          </button>
          {endError && (
            <p role="alert" className="error">
              {endError}
            </p>
          )}
        </div>
      )}
      {showShortcuts && <ChatShortcuts scaleSize={pair?.assignment.scale.length ?? 5} ranked={ranked ? pair!.assignment.candidates.length : 0} onClose={() => setShowShortcuts(false)} />}
    </main>
  );
}

function pairFrom(assignment: Assignment, state: StreamState): LivePair {
  return {
    assignment,
    texts: Object.fromEntries(assignment.candidates.map((c) => [c.label, c.content])),
    states: Object.fromEntries(assignment.candidates.map((c) => [c.label, state])),
  };
}

function replyCount(k: number): string {
  return ["two", "three", "four"][k - 2] ?? String(k);
}

function streamProblemText(error: unknown): string {
  if (error instanceof StreamBroken) {
    return `${error.message} Your conversation is saved; try again.`;
  }
  if (error instanceof ApiError && error.status >= 500) {
    return `The server had a problem (HTTP ${error.status}). Your conversation is saved; try again in a moment.`;
  }
  return errorMessage(error);
}

const ROLE_NAMES: Record<string, string> = { system: "System", user: "You", assistant: "Chosen reply" };

/** The conversation so far; replies are model output, so they render as sanitised Markdown. */
function Transcript({ messages }: { messages: SessionMessage[] }) {
  if (messages.length === 0) {
    return <p className="hint">Write the first message; replies will be written side by side for you to compare.</p>;
  }
  let replies = 0;
  return (
    <ol className="conversation transcript" aria-label="Conversation">
      {messages.map((message) => {
        const reply = message.role === "assistant" ? ++replies : 0;
        return (
          <li key={message.id} className={`message message-${message.role}`} data-testid="chat-message">
            <div className="message-role">{ROLE_NAMES[message.role] ?? message.role}</div>
            {message.role === "assistant" ? (
              <CompletionText text={message.content} label={`reply ${reply}`} rawLabel={`Show raw text of chosen reply ${reply}`} />
            ) : (
              <div className="plain-text">{message.content}</div>
            )}
          </li>
        );
      })}
    </ol>
  );
}

/** `ranked`: how many replies are ranked (0 when two are compared on the scale). */
function ChatShortcuts({ scaleSize, ranked, onClose }: { scaleSize: number; ranked: number; onClose: () => void }) {
  const judging = ranked
    ? [
        { keys: <><kbd>Alt</kbd>+<kbd>↑</kbd>/<kbd>↓</kbd></>, action: "Move the focused reply up or down the ranking" },
        { keys: <><kbd>1</kbd>–<kbd>{ranked}</kbd></>, action: "Move the focused reply to that rank" },
      ]
    : [{ keys: <><kbd>1</kbd>–<kbd>{Math.min(scaleSize, 9)}</kbd></>, action: "Choose a point on the scale (also while the replies are written)" }];
  const shortcuts = [
    ...judging,
    { keys: <kbd>Enter</kbd>, action: "Submit your judgment; in the message box, send the message" },
    { keys: <><kbd>Shift</kbd>+<kbd>Enter</kbd></>, action: "New line in the message box" },
    { keys: <kbd>?</kbd>, action: "Show or hide this list" },
    { keys: <kbd>Esc</kbd>, action: "Close this list" },
  ];
  return (
    <section className="shortcut-sheet" aria-labelledby="shortcut-heading">
      <h2 id="shortcut-heading">Keyboard shortcuts</h2>
      <dl>
        {shortcuts.map((shortcut) => (
          <div key={shortcut.action} className="shortcut">
            <dt>{shortcut.keys}</dt>
            <dd>{shortcut.action}</dd>
          </div>
        ))}
      </dl>
      <p className="hint">Shortcuts are off while you type in a text box.</p>
      <button type="button" onClick={onClose}>
        Close
      </button>
    </section>
  );
}
