import { useLayoutEffect, useRef, useState } from "react";

/**
 * The figure's content width, so a chart draws at real pixels and its text stays readable on a
 * phone. `initial` holds until the box is measured (and where ResizeObserver is missing).
 */
export function useBoxWidth(initial: number) {
  const box = useRef<HTMLElement>(null);
  const [width, setWidth] = useState(initial);
  useLayoutEffect(() => {
    const element = box.current;
    if (!element || typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(([entry]) => {
      if (entry) setWidth(Math.max(260, Math.floor(entry.contentRect.width)));
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return [box, width] as const;
}
