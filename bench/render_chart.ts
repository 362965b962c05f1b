/** The figures the chart needs. */
export interface ChartInput {
  mode: string;
  date: string;
  levels: { connections: number; service: { rps: number; p99: number }; referenceTps: number; leanTps: number }[];
}

/**
 * An SVG line chart: throughput of the service and of the pgbench references
 * (left axis) and the service's p99 latency (right axis) against connections.
 */
export function renderChart(input: ChartInput): string {
  const width = 720, height = 420, left = 70, right = 70, top = 50, bottom = 60;
  const plotW = width - left - right, plotH = height - top - bottom;
  const levels = input.levels;
  const maxRate = niceCeil(Math.max(1, ...levels.flatMap((l) => [l.service.rps, l.referenceTps, l.leanTps])));
  const maxP99 = niceCeil(Math.max(1, ...levels.map((l) => l.service.p99)));
  const x = (i: number) => left + (levels.length === 1 ? plotW / 2 : (i * plotW) / (levels.length - 1));
  const yRate = (v: number) => top + plotH - (v / maxRate) * plotH;
  const yP99 = (v: number) => top + plotH - (v / maxP99) * plotH;
  const line = (points: [number, number][], color: string, dash = "") =>
    `<polyline fill="none" stroke="${color}" stroke-width="2.5"${dash ? ` stroke-dasharray="${dash}"` : ""} ` +
    `points="${points.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" ")}"/>` +
    points.map(([px, py]) => `<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="4" fill="${color}"/>`).join("");
  const ticks = [0, 0.25, 0.5, 0.75, 1];
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${
    width / 2
  }" y="24" text-anchor="middle" font-size="15">Mailgun webhook vs pgbench reference (${input.mode}, ${
    input.date.slice(0, 10)
  })</text>
${
    ticks.map((t) =>
      `<line x1="${left}" x2="${left + plotW}" y1="${yRate(t * maxRate)}" y2="${yRate(t * maxRate)}" stroke="#ddd"/>` +
      `<text x="${left - 8}" y="${yRate(t * maxRate) + 4}" text-anchor="end">${Math.round(t * maxRate)}</text>` +
      `<text x="${left + plotW + 8}" y="${yP99(t * maxP99) + 4}">${(t * maxP99).toFixed(1)}</text>`
    ).join("\n")
  }
${
    levels.map((l, i) => `<text x="${x(i)}" y="${top + plotH + 20}" text-anchor="middle">${l.connections}</text>`).join(
      "",
    )
  }
<text x="${left + plotW / 2}" y="${height - 18}" text-anchor="middle">concurrent connections</text>
<text transform="translate(18 ${
    top + plotH / 2
  }) rotate(-90)" text-anchor="middle">events (transactions) per second</text>
<text transform="translate(${width - 14} ${
    top + plotH / 2
  }) rotate(90)" text-anchor="middle">service p99 latency, ms</text>
${line(levels.map((l, i) => [x(i), yRate(l.service.rps)]), "#1f77b4")}
${line(levels.map((l, i) => [x(i), yRate(l.referenceTps)]), "#7f7f7f", "6 4")}
${line(levels.map((l, i) => [x(i), yRate(l.leanTps)]), "#2ca02c", "6 4")}
${line(levels.map((l, i) => [x(i), yP99(l.service.p99)]), "#d62728", "2 3")}
<g transform="translate(${left + 10} ${top + 8})">
<rect width="250" height="80" fill="white" stroke="#ccc"/>
<line x1="8" x2="38" y1="14" y2="14" stroke="#1f77b4" stroke-width="2.5"/><text x="46" y="18">service, signed events/s</text>
<line x1="8" x2="38" y1="32" y2="32" stroke="#7f7f7f" stroke-width="2.5" stroke-dasharray="6 4"/><text x="46" y="36">pgbench reference, tps</text>
<line x1="8" x2="38" y1="50" y2="50" stroke="#2ca02c" stroke-width="2.5" stroke-dasharray="6 4"/><text x="46" y="54">lean pgbench reference, tps</text>
<line x1="8" x2="38" y1="68" y2="68" stroke="#d62728" stroke-width="2.5" stroke-dasharray="2 3"/><text x="46" y="72">service p99, ms (right axis)</text>
</g>
</svg>
`;
}

function niceCeil(value: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * magnitude) return step * magnitude;
  return 10 * magnitude;
}
