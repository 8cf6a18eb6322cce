/**
 * The Prometheus text exposition format (version 0.0.4), written by hand: a family is a name,
 * a HELP line, a TYPE line and its samples; a histogram is cumulative `_bucket{le=...}` lines
 * ending with `le="+Inf"`, then `_sum` and `_count`. No client library: HA-OSCAR exports a few
 * dozen series, and the format is small and stable
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 */

export type Labels = Readonly<Record<string, string>>;

export interface Sample {
  labels?: Labels;
  value: number;
}

export type MetricFamily =
  | { name: string; help: string; type: 'gauge' | 'counter'; samples: Sample[] }
  | { name: string; help: string; type: 'histogram'; histograms: { labels?: Labels; snapshot: HistogramSnapshot }[] };

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A label value as the format wants it: backslash, double quote and line feed escaped. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

/** HELP text escapes only backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** A sample value: integers as they are, NaN and infinities as Prometheus spells them. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

function formatLabels(labels: Labels | undefined, extra?: [string, string]): string {
  const pairs = Object.entries(labels ?? {});
  if (extra) pairs.push(extra);
  if (pairs.length === 0) return '';
  for (const [name] of pairs) {
    if (!LABEL_NAME.test(name) || name.startsWith('__')) throw new Error(`invalid Prometheus label name '${name}'`);
  }
  return `{${pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`;
}

/**
 * The families as exposition text, each with its HELP and TYPE lines, ending with a newline.
 * @throws Error on a metric or label name the format does not allow, or one family name used
 * twice (a programming error, caught by the unit tests, never by a scrape).
 */
export function renderFamilies(families: readonly MetricFamily[]): string {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const f of families) {
    if (!METRIC_NAME.test(f.name)) throw new Error(`invalid Prometheus metric name '${f.name}'`);
    if (seen.has(f.name)) throw new Error(`metric family '${f.name}' is written twice`);
    seen.add(f.name);
    out.push(`# HELP ${f.name} ${escapeHelp(f.help)}`, `# TYPE ${f.name} ${f.type}`);
    if (f.type === 'histogram') {
      for (const { labels, snapshot } of f.histograms) {
        for (const [le, count] of snapshot.buckets) out.push(`${f.name}_bucket${formatLabels(labels, ['le', formatValue(le)])} ${count}`);
        out.push(`${f.name}_bucket${formatLabels(labels, ['le', '+Inf'])} ${snapshot.count}`);
        out.push(`${f.name}_sum${formatLabels(labels)} ${formatValue(snapshot.sum)}`);
        out.push(`${f.name}_count${formatLabels(labels)} ${snapshot.count}`);
      }
    } else {
      for (const s of f.samples) out.push(`${f.name}${formatLabels(s.labels)} ${formatValue(s.value)}`);
    }
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

/** Cumulative bucket counts (upper bound → observations at most that), the total count and sum. */
export interface HistogramSnapshot {
  buckets: [number, number][];
  count: number;
  sum: number;
}

/** A histogram of observations (e.g. seconds), with fixed upper bounds; `+Inf` is implicit. */
export class Histogram {
  private readonly counts: number[];
  private count = 0;
  private sum = 0;

  /** @throws Error when the bounds are not finite and strictly increasing. */
  constructor(readonly bounds: readonly number[]) {
    bounds.forEach((b, i) => {
      if (!Number.isFinite(b) || (i > 0 && b <= bounds[i - 1]!)) throw new Error(`histogram bounds must be finite and increasing, got ${bounds.join(', ')}`);
    });
    this.counts = bounds.map(() => 0);
  }

  observe(value: number): void {
    this.count++;
    this.sum += value;
    // Non-cumulative here; the snapshot adds them up.
    const i = this.bounds.findIndex((b) => value <= b);
    if (i >= 0) this.counts[i]!++;
  }

  snapshot(): HistogramSnapshot {
    let running = 0;
    return {
      buckets: this.bounds.map((b, i) => [b, (running += this.counts[i]!)]),
      count: this.count,
      sum: this.sum,
    };
  }
}
