import type { MouseEvent, ReactNode } from "react";
import { navigate } from "../router";

/** An ordinary link that changes pages without a reload; modified clicks keep their meaning. */
export function Link({ to, children, current = false }: { to: string; children: ReactNode; current?: boolean }) {
  function onClick(event: MouseEvent<HTMLAnchorElement>) {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  }
  return (
    <a href={to} onClick={onClick} aria-current={current ? "page" : undefined}>
      {children}
    </a>
  );
}
