import type { KeyboardEvent } from "react";

const POINTS = [1, 2, 3, 4, 5] as const;

interface RatingInputProps {
  /** Candidate label, e.g. "A". */
  label: string;
  /** Wording of each point, keys "1".."5". */
  rubric: Record<string, string>;
  aspects: string[];
  /** "overall" | aspect -> 1..5 */
  value: Record<string, number>;
  onChange: (name: string, score: number) => void;
  disabled?: boolean;
}

/** "factual_accuracy" -> "Factual accuracy" */
export function aspectName(aspect: string): string {
  const words = aspect.replace(/[_-]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * 1-5 ratings of one response: the overall rating with the rubric's wording beside each
 * point, then one compact row per aspect. Native radio groups: Tab between groups, arrows
 * within; a digit 1-5 typed in a group picks that point.
 */
export function RatingInput({ label, rubric, aspects, value, onChange, disabled = false }: RatingInputProps) {
  function digitPicks(name: string) {
    return (event: KeyboardEvent) => {
      if (/^[1-5]$/.test(event.key) && !event.altKey && !event.ctrlKey && !event.metaKey) {
        event.preventDefault();
        onChange(name, Number(event.key));
      }
    };
  }

  return (
    <div className="rating">
      <fieldset className="rating-overall" disabled={disabled} onKeyDown={digitPicks("overall")}>
        <legend>Overall rating of response {label}</legend>
        {POINTS.map((point) => (
          <label key={point} className="rating-point">
            <input
              type="radio"
              name={`rating-${label}-overall`}
              value={point}
              checked={value.overall === point}
              onChange={() => onChange("overall", point)}
            />
            <span className="rating-number">{point}</span>
            <span>{rubric[String(point)] ?? ""}</span>
          </label>
        ))}
      </fieldset>
      {aspects.map((aspect) => (
        <fieldset key={aspect} className="rating-aspect" disabled={disabled} onKeyDown={digitPicks(aspect)}>
          <legend>
            {aspectName(aspect)} <span className="hint">(optional)</span>
          </legend>
          <div className="rating-row">
            {POINTS.map((point) => (
              <label key={point} className="rating-chip" title={rubric[String(point)]}>
                <input
                  type="radio"
                  name={`rating-${label}-${aspect}`}
                  value={point}
                  checked={value[aspect] === point}
                  onChange={() => onChange(aspect, point)}
                />
                <span>{point}</span>
                <span className="visually-hidden">{rubric[String(point)] ? `: ${rubric[String(point)]}` : ""}</span>
              </label>
            ))}
          </div>
        </fieldset>
      ))}
    </div>
  );
}
