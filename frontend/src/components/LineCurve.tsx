import { AxisBottom, AxisLeft } from "@visx/axis";
import { GridRows } from "@visx/grid";
import { Group } from "@visx/group";
import { scaleLinear } from "@visx/scale";
import { LinePath } from "@visx/shape";
import { useId } from "react";

import { useBoxWidth } from "./useBoxWidth";

export interface CurvePoint {
  step: number;
  value: number;
}

interface LineCurveProps {
  title: string;
  note: string;
  points: CurvePoint[];
  format: (value: number) => string;
  /** Fixed y range (accuracies pass [0, 1]); else the data's own range. */
  domain?: [number, number];
}

const WIDTH = 480;
const HEIGHT = 220;
const MARGIN = { top: 12, right: 16, bottom: 42, left: 52 };

/** One logged number over training steps, e.g. the loss; its first, last and best values in words too. */
export function LineCurve({ title, note, points, format, domain }: LineCurveProps) {
  const titleId = useId();
  const descId = useId();
  const [box, width] = useBoxWidth(WIDTH);
  const innerWidth = width - MARGIN.left - MARGIN.right;
  const innerHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const steps = points.map((p) => p.step);
  const values = points.map((p) => p.value);
  const low = Math.min(...values);
  const high = Math.max(...values);
  const x = scaleLinear<number>({
    domain: [Math.min(...steps), Math.max(Math.max(...steps), Math.min(...steps) + 1)],
    range: [0, innerWidth],
  });
  const y = scaleLinear<number>({
    domain: domain ?? (low === high ? [low - 1, high + 1] : [low, high]),
    range: [innerHeight, 0],
    nice: domain === undefined,
  });
  const first = points[0]!;
  const last = points[points.length - 1]!;
  const summary = `${points.length} points from step ${first.step} to ${last.step}: ${format(first.value)} at first, ${format(last.value)} at the end, lowest ${format(low)}, highest ${format(high)}.`;

  return (
    <figure className="chart" ref={box}>
      <figcaption id={titleId}>
        <strong>{title}</strong> <span className="hint">{note}</span>
      </figcaption>
      <svg width={width} height={HEIGHT} viewBox={`0 0 ${width} ${HEIGHT}`} role="img" aria-labelledby={titleId} aria-describedby={descId}>
        <desc id={descId}>{summary}</desc>
        <Group left={MARGIN.left} top={MARGIN.top}>
          <GridRows scale={y} width={innerWidth} numTicks={4} stroke="#e5e9ee" />
          <LinePath data={points} x={(p) => x(p.step)} y={(p) => y(p.value)} className="chart-line" />
          {points.length === 1 && <circle cx={x(first.step)} cy={y(first.value)} r={3} className="chart-dot" />}
          <AxisLeft
            scale={y}
            numTicks={4}
            tickFormat={(value) => format(Number(value))}
            stroke="#57606a"
            tickStroke="#57606a"
            tickLabelProps={{ fill: "#57606a", fontSize: 11, textAnchor: "end", dx: -4, dy: "0.33em" }}
          />
          <AxisBottom
            top={innerHeight}
            scale={x}
            numTicks={Math.min(5, Math.max(1, points.length))}
            tickFormat={(value) => String(Math.round(Number(value)))}
            stroke="#57606a"
            tickStroke="#57606a"
            tickLabelProps={{ fill: "#57606a", fontSize: 11, textAnchor: "middle" }}
            label="step"
            labelProps={{ fill: "#57606a", fontSize: 11, textAnchor: "middle" }}
            labelOffset={8}
          />
        </Group>
      </svg>
    </figure>
  );
}
