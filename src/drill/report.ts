/**
 * The drill's report: what the client saw, what the operation did, whether two nodes held the
 * group at once, and the verdict against the recovery time objective. Pure: assembled by
 * src/cli/drill.ts, rendered here as text, Markdown (for a ticket) or JSON.
 */
import { formatDuration } from '../config/duration.js';
import type { Phase } from '../history/timeline.js';
import type { ArpWatchReport } from './arp.js';
import type { NodeReports } from './holders.js';
import type { ProbeSummary } from './probe-summary.js';

export interface DrillOperation {
  workflowId: string;
  runId?: string;
  kind: 'switchover' | 'failover';
  status: string;
  outcome?: string;
  failure?: string;
  from?: string | null;
  to?: string | null;
  epochBefore?: number;
  epoch?: number;
  phases: Phase[];
  startedAt: number;
  endedAt?: number;
}

export interface DrillReport {
  cluster: string;
  group: string;
  url: string;
  rtoMs: number;
  startedAt: number;
  endedAt: number;
  /** The status check before the move, and whether --force overrode it. */
  precheck: { code: number; line: string; forced: boolean };
  operation: DrillOperation;
  outage: ProbeSummary;
  /** Distinct answers of the service (a service that names its node shows the move). */
  answers: { body: string; count: number }[];
  holders: {
    nodes: NodeReports | { notChecked: string };
    here: (Omit<ArpWatchReport, 'rounds'> & { roundCount: number }) | { notChecked: string };
  };
  verdict: { pass: boolean; reasons: string[] };
}

/** PASS when the move ended with the group on a node, the outage is within the RTO and nobody saw two holders. Pure. */
export function drillVerdict(r: Omit<DrillReport, 'verdict'>): { pass: boolean; reasons: string[] } {
  const fail: string[] = [];
  const ok: string[] = [];
  const op = r.operation;
  const moved = op.status === 'completed' && (op.outcome === 'moved' || op.outcome === 'already-there');
  if (moved) ok.push(`the ${op.kind} ${op.outcome === 'moved' ? `moved ${r.group} from ${op.from ?? 'nowhere'} to ${op.to}` : `left ${r.group} on ${op.to}`}`);
  else fail.push(`the ${op.kind} did not move the group: ${op.status}${op.outcome ? ` (${op.outcome})` : ''}${op.failure ? `: ${op.failure}` : ''}`);
  const gap = r.outage.longestGapMs;
  const ongoing = r.outage.gaps.some((g) => g.ongoing);
  if (r.outage.ok === 0) fail.push('the service never answered the probe');
  else if (ongoing) fail.push(`the service did not answer again before the drill ended (${formatDuration(gap)} without an answer)`);
  else if (gap > r.rtoMs) fail.push(`the client-observed outage ${formatDuration(gap)} exceeds the RTO ${formatDuration(r.rtoMs)}`);
  else ok.push(`the client-observed outage ${formatDuration(gap)} is within the RTO ${formatDuration(r.rtoMs)}`);
  const nodes = r.holders.nodes;
  if ('notChecked' in nodes) ok.push(`nodes' reports not checked: ${nodes.notChecked}`);
  else if (nodes.overlaps.length > 0) fail.push(`two holders by the nodes' own reports: ${nodes.overlaps.map((o) => `${o.nodes.join(' and ')} for ${formatDuration(o.ms)}`).join('; ')}`);
  else ok.push("never two holders by the nodes' own reports");
  const here = r.holders.here;
  if ('notChecked' in here) ok.push(`ARP from here not checked: ${here.notChecked}`);
  else if (here.duplicates.length > 0) fail.push(`two holders of ${here.address} seen from here: ${here.duplicates.length} of ${here.roundCount} ARP rounds were answered by two or more MACs (${[...new Set(here.duplicates.flatMap((d) => d.macs))].join(', ')})`);
  else if (here.roundCount === 0) ok.push(`ARP from here not checked: ${here.errors.join('; ') || 'no round completed'}`);
  else ok.push(`never two MACs answering ARP for ${here.address} from here (${here.roundCount} rounds${here.errors.length ? `; errors: ${here.errors.join('; ')}` : ''})`);
  return { pass: fail.length === 0, reasons: [...fail, ...ok] };
}

const time = (ms: number) => new Date(ms).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
/** ms after the drill's start. */
const rel = (r: DrillReport, at: number) => `+${formatDuration(Math.max(0, at - r.startedAt))}`;

function lines(r: DrillReport): { title: string; sections: [string, string[]][] } {
  const op = r.operation;
  const o = r.outage;
  const outage = [
    `probe ${r.url} every ${formatDuration(o.everyMs)}: ${o.requests} requests, ${o.failures} failed${o.failuresBeforeFirstOk ? ` (${o.failuresBeforeFirstOk} before the first answer)` : ''}`,
    `longest gap between answers: ${formatDuration(o.longestGapMs)} (RTO ${formatDuration(r.rtoMs)})`,
    ...(o.firstFailureAt !== undefined ? [`first failure ${rel(r, o.firstFailureAt)}, last failure ${rel(r, o.lastFailureAt!)}`] : ['no request failed']),
    ...o.gaps.map((g) => `gap ${rel(r, g.from)} to ${rel(r, g.to)}: ${formatDuration(g.ms)}, ${g.failures} failed${g.ongoing ? ' (not over when the drill ended)' : ''}`),
    ...(r.answers.length > 1 && r.answers.length <= 6 ? [`answers: ${r.answers.map((a) => `"${a.body}" ×${a.count}`).join(', ')}`] : []),
  ];
  const operation = [
    `${op.kind} workflow ${op.workflowId}${op.runId ? ` (run ${op.runId})` : ''}: ${op.status}${op.outcome ? `, ${op.outcome}` : ''}${op.failure ? `: ${op.failure}` : ''}`,
    `from ${op.from ?? '?'} to ${op.to ?? '?'}, epoch ${op.epochBefore ?? '?'} -> ${op.epoch ?? '?'}, started ${rel(r, op.startedAt)}${op.endedAt !== undefined ? `, ended ${rel(r, op.endedAt)}` : ''}`,
    ...(op.phases.length ? [`phases: ${op.phases.map((p) => `${p.name} ${formatDuration(p.ms)}`).join(', ')}`] : []),
  ];
  const nodes = r.holders.nodes;
  const here = r.holders.here;
  const holders = [
    ...('notChecked' in nodes
      ? [`nodes' reports: not checked: ${nodes.notChecked}`]
      : [
          `nodes' reports: ${nodes.overlaps.length ? `TWO HOLDERS: ${nodes.overlaps.map((x) => `${x.nodes.join(' and ')} ${rel(r, x.from)} for ${formatDuration(x.ms)}`).join('; ')}` : 'never two holders'}`,
          ...nodes.intervals.map((i) => `  ${i.node}${i.epoch !== undefined ? ` epoch ${i.epoch}` : ''}: ${rel(r, i.from)} (${i.began}) to ${i.to !== undefined ? `${rel(r, i.to)} (${i.ended})` : 'the end'}`),
          ...nodes.notes.map((n) => `  note: ${n}`),
        ]),
    ...('notChecked' in here
      ? [`ARP from here: not checked: ${here.notChecked}`]
      : here.roundCount === 0
        ? [`ARP from here: not checked: ${here.errors.join('; ') || 'no round completed'}`]
        : [
          `ARP from here (${here.interface}, ${here.roundCount} rounds): ${here.duplicates.length ? `TWO HOLDERS in ${here.duplicates.length} rounds, first ${rel(r, here.duplicates[0]!.at)}: ${here.duplicates[0]!.macs.join(' and ')}` : 'never two MACs for one request'}; MACs seen: ${here.macs.join(', ') || 'none'}`,
          ...here.errors.map((e) => `  error: ${e}`),
        ]),
  ];
  const precheck = [`${r.precheck.line}${r.precheck.forced && r.precheck.code !== 0 ? ' (overridden with --force)' : ''}`];
  return {
    title: `Drill of ${r.group} (cluster ${r.cluster}), ${time(r.startedAt)}: ${r.verdict.pass ? 'PASS' : 'FAIL'}`,
    sections: [['Verdict', r.verdict.reasons], ['Before', precheck], ['Client-observed outage', outage], ['Operation', operation], ['Two holders', holders]],
  };
}

export function renderDrillText(r: DrillReport): string {
  const { title, sections } = lines(r);
  return `${title}\n${sections.map(([h, ls]) => `${h.toLowerCase()}:\n${ls.map((l) => `  ${l}`).join('\n')}`).join('\n')}\n`;
}

/** Markdown an operator can paste into a ticket. */
export function renderDrillMarkdown(r: DrillReport): string {
  const { title, sections } = lines(r);
  const esc = (s: string) => s.replace(/([\\`*_[\]<>|])/g, '\\$1');
  return `## ${esc(title)}\n\n${sections.map(([h, ls]) => `### ${h}\n\n${ls.map((l) => (l.startsWith('  ') ? `  - ${esc(l.trim())}` : `- ${esc(l)}`)).join('\n')}\n`).join('\n')}`;
}
