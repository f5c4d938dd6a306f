import { useState } from "react";
import Markdown, { type Components } from "react-markdown";

// Completions are untrusted model output. react-markdown builds React elements (never
// innerHTML) and shows raw HTML as text; on top of that only absolute http(s)/mailto links
// survive, and images are never fetched (a remote image is a tracking pixel).
const SAFE_URL = /^(https?:|mailto:)/i;

export function safeUrl(url: string): string {
  return SAFE_URL.test(url.trim()) ? url : "";
}

const components: Components = {
  a: ({ href, children }) =>
    href ? (
      <a href={href} target="_blank" rel="noopener noreferrer nofollow">
        {children}
      </a>
    ) : (
      <span className="md-unsafe-link">{children}</span>
    ),
  img: ({ alt }) => <span className="md-image">[image{alt ? `: ${alt}` : ""}]</span>,
};

/** Model output as sanitised Markdown, with a toggle to the exact raw text. */
export function CompletionText({ text, label, rawLabel }: { text: string; label: string; rawLabel?: string }) {
  const [raw, setRaw] = useState(false);
  return (
    <div className="completion">
      <button
        type="button"
        className="link-button raw-toggle"
        aria-pressed={raw}
        aria-label={rawLabel ?? `Show raw text of response ${label}`}
        onClick={() => setRaw((shown) => !shown)}
      >
        Raw text
      </button>
      {raw ? (
        <pre className="plain-text raw-text">{text}</pre>
      ) : (
        <div className="markdown">
          <Markdown components={components} urlTransform={safeUrl} skipHtml={false}>
            {text}
          </Markdown>
        </div>
      )}
    </div>
  );
}
