import type { PromptMessage } from "../api/types";

const ROLE_NAMES: Record<string, string> = { system: "System", user: "User", assistant: "Assistant" };

export function Conversation({ messages }: { messages: PromptMessage[] }) {
  return (
    <ol className="conversation" aria-label="Prompt">
      {messages.map((message, index) => (
        <li key={index} className={`message message-${message.role}`}>
          <div className="message-role">{ROLE_NAMES[message.role] ?? message.role}</div>
          <div className="plain-text">{message.content}</div>
        </li>
      ))}
    </ol>
  );
}
