/** One line of a chart: a name for the legend and its points. */
export interface Series {
  readonly name: string;
  readonly points: ReadonlyArray<readonly [number, number]>;
  /** Drawn dashed (ceilings and baselines). */
  readonly dashed?: boolean;
}

export interface LineChart {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
}

const WIDTH = 720;
const HEIGHT = 400;
const MARGIN = { top: 40, right: 190, bottom: 50, left: 80 };
const COLOURS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

/** A round step giving about `count` ticks over `max`. */
function tickStep(max: number, count: number): number {
  const raw = max / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * magnitude).find((step) => step >= raw)!;
}

function label(value: number): string {
  if (value >= 1_000_000) return `${+(value / 1_000_000).toFixed(1)}M`;
  if (value >= 1000) return `${+(value / 1000).toFixed(1)}k`;
  return `${+value.toFixed(2)}`;
}

const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/**
 * A self-contained SVG line chart (linear axes from 0, a legend on the
 * right): what docs/benchmarks.md embeds. Small on purpose: the benchmark charts
 * need lines, axes and labels, nothing a chart library would add.
 */
export function lineChart(chart: LineChart): string {
  const all = chart.series.flatMap((s) => s.points);
  const xMax = Math.max(...all.map(([x]) => x), 1e-9);
  const yMax = Math.max(...all.map(([, y]) => y), 1e-9);
  const xStep = tickStep(xMax, 6);
  const yStep = tickStep(yMax, 5);
  const xEnd = Math.ceil(xMax / xStep) * xStep;
  const yEnd = Math.ceil(yMax / yStep) * yStep;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const x = (value: number) => MARGIN.left + (value / xEnd) * plotWidth;
  const y = (value: number) => MARGIN.top + plotHeight - (value / yEnd) * plotHeight;

  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${HEIGHT}" viewBox="0 0 ${WIDTH} ${HEIGHT}" font-family="sans-serif" font-size="12">`,
    `<rect width="${WIDTH}" height="${HEIGHT}" fill="white"/>`,
    `<text x="${WIDTH / 2 - MARGIN.right / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escape(chart.title)}</text>`,
  ];
  for (let tick = 0; tick <= xEnd + xStep / 2; tick += xStep) {
    parts.push(`<line x1="${x(tick)}" y1="${y(0)}" x2="${x(tick)}" y2="${y(yEnd)}" stroke="#eee"/>`);
    parts.push(`<text x="${x(tick)}" y="${y(0) + 18}" text-anchor="middle">${label(tick)}</text>`);
  }
  for (let tick = 0; tick <= yEnd + yStep / 2; tick += yStep) {
    parts.push(`<line x1="${x(0)}" y1="${y(tick)}" x2="${x(xEnd)}" y2="${y(tick)}" stroke="#eee"/>`);
    parts.push(`<text x="${x(0) - 8}" y="${y(tick) + 4}" text-anchor="end">${label(tick)}</text>`);
  }
  parts.push(`<line x1="${x(0)}" y1="${y(0)}" x2="${x(xEnd)}" y2="${y(0)}" stroke="black"/>`);
  parts.push(`<line x1="${x(0)}" y1="${y(0)}" x2="${x(0)}" y2="${y(yEnd)}" stroke="black"/>`);
  parts.push(`<text x="${x(xEnd / 2)}" y="${HEIGHT - 10}" text-anchor="middle">${escape(chart.xLabel)}</text>`);
  parts.push(
    `<text transform="translate(18 ${y(yEnd / 2)}) rotate(-90)" text-anchor="middle">${escape(chart.yLabel)}</text>`,
  );
  for (const [i, series] of chart.series.entries()) {
    const colour = COLOURS[i % COLOURS.length];
    const dash = series.dashed ? ' stroke-dasharray="6 4"' : '';
    const points = series.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ');
    parts.push(`<polyline points="${points}" fill="none" stroke="${colour}" stroke-width="2"${dash}/>`);
    if (series.points.length <= 12) {
      for (const [px, py] of series.points) parts.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="3" fill="${colour}"/>`);
    }
    const legendY = MARGIN.top + 10 + i * 20;
    parts.push(`<line x1="${WIDTH - MARGIN.right + 15}" y1="${legendY}" x2="${WIDTH - MARGIN.right + 40}" y2="${legendY}" stroke="${colour}" stroke-width="2"${dash}/>`);
    parts.push(`<text x="${WIDTH - MARGIN.right + 46}" y="${legendY + 4}">${escape(series.name)}</text>`);
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
