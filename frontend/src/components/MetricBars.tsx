import { AxisBottom } from "@visx/axis";
import { GridColumns } from "@visx/grid";
import { Group } from "@visx/group";
import { scaleBand, scaleLinear } from "@visx/scale";
import { Bar, Line } from "@visx/shape";
import { useId } from "react";

import { useBoxWidth } from "./useBoxWidth";

export interface MetricRow {
  name: string;
  value: number | null;
}

interface MetricBarsProps {
  title: string;
  /** One line under the title: what a good value looks like. */
  note: string;
  rows: MetricRow[];
  /** Highest value on the axis; defaults to the largest value (rates pass 1). */
  max?: number;
  /** A value marked with a dashed line, e.g. 0.5 where no position bias sits. */
  reference?: number;
  format: (value: number) => string;
}

const WIDTH = 480; // until the box is measured (and where ResizeObserver is missing)
const ROW = 26;
const MARGIN = { top: 8, right: 56, bottom: 28, left: 104 };

/** A horizontal bar per annotator for one metric; rows with no data say so. */
export function MetricBars({ title, note, rows, max, reference, format }: MetricBarsProps) {
  const titleId = useId();
  const descId = useId();
  const [box, width] = useBoxWidth(WIDTH);
  const height = MARGIN.top + MARGIN.bottom + Math.max(rows.length, 1) * ROW;
  const innerWidth = width - MARGIN.left - MARGIN.right;
  const innerHeight = height - MARGIN.top - MARGIN.bottom;
  // With no data (or only zeros) an axis from 0 to 1 still reads sensibly.
  const top = max ?? (Math.max(0, ...rows.map((row) => row.value ?? 0)) || 1);
  const x = scaleLinear<number>({ domain: [0, top], range: [0, innerWidth], nice: max === undefined });
  const y = scaleBand<string>({ domain: rows.map((row) => row.name), range: [0, innerHeight], padding: 0.25 });
  const summary = rows.map((row) => `${row.name}: ${row.value === null ? "no data" : format(row.value)}`).join("; ");

  return (
    <figure className="chart" ref={box}>
      <figcaption id={titleId}>
        <strong>{title}</strong> <span className="hint">{note}</span>
      </figcaption>
      <svg width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="img" aria-labelledby={titleId} aria-describedby={descId}>
        <desc id={descId}>{summary}</desc>
        <Group left={MARGIN.left} top={MARGIN.top}>
          <GridColumns scale={x} height={innerHeight} numTicks={4} stroke="#e5e9ee" />
          {rows.map((row) => {
            const rowY = y(row.name) ?? 0;
            const middle = rowY + y.bandwidth() / 2;
            return (
              <g key={row.name}>
                <text x={-8} y={middle} dy="0.35em" textAnchor="end" className="chart-label">
                  {row.name.length > 14 ? `${row.name.slice(0, 13)}…` : row.name}
                </text>
                {row.value === null ? (
                  <text x={4} y={middle} dy="0.35em" className="chart-missing">
                    no data
                  </text>
                ) : (
                  <>
                    <Bar
                      x={0}
                      y={rowY}
                      width={Math.max(1, x(Math.min(row.value, top)))}
                      height={y.bandwidth()}
                      className="chart-bar"
                    />
                    <text x={x(Math.min(row.value, top)) + 4} y={middle} dy="0.35em" className="chart-value">
                      {format(row.value)}
                    </text>
                  </>
                )}
              </g>
            );
          })}
          {reference !== undefined && (
            <Line
              from={{ x: x(reference), y: -4 }}
              to={{ x: x(reference), y: innerHeight }}
              className="chart-reference"
              strokeDasharray="4 3"
            />
          )}
          <AxisBottom
            top={innerHeight}
            scale={x}
            numTicks={4}
            tickFormat={(value) => format(Number(value))}
            stroke="#57606a"
            tickStroke="#57606a"
            tickLabelProps={{ fill: "#57606a", fontSize: 11, textAnchor: "middle" }}
          />
        </Group>
      </svg>
    </figure>
  );
}
