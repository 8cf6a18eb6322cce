/**
 * The postmortem timeline as text (a terminal), Markdown (an incident ticket) or JSON. Pure:
 * the same Timeline always renders the same; times are UTC so that a report reads the same
 * wherever it is pasted.
 */
import type { OperationStory, Phase, Step, Timeline } from './timeline.js';
import { printable } from '../cli/status-text.js';

/** Lines joined, each made printable: details come from agents and operators (status-text.ts). */
function lines(out: readonly string[]): string {
  return `${out.map(printable).join('\n')}\n`;
}

/** 2026-12-07 00:10:05.123 (UTC). */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').replace('Z', '');
}

/** 850 ms, 4.1 s, 2 min 5 s, 1 h 3 min. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
  return `${Math.floor(ms / 3_600_000)} h ${Math.round((ms % 3_600_000) / 60_000)} min`;
}

function phasesText(phases: readonly Phase[]): string {
  return phases.map((p) => `${p.name} ${formatMs(p.ms)}`).join(' · ');
}

/** "heal web/httpd on n1", "failover web", "switchover web to n2", "resync web on n2", "controller run". */
export function operationTitle(s: OperationStory): string {
  switch (s.operation) {
    case 'heal': return `heal ${s.group ?? '?'}/${s.resource ?? '?'} on ${s.node ?? '?'}`;
    case 'failover': return `failover ${s.group ?? '?'}`;
    case 'switchover': return `switchover ${s.group ?? '?'} to ${s.node ?? '?'}`;
    case 'resync': return `resync ${s.group ?? '?'} on ${s.node ?? '?'}`;
    case 'controller': return 'controller run';
    default: return s.type;
  }
}

/** Who held the group before and after, and under which epoch. */
function movement(s: OperationStory): string | undefined {
  if (s.from === undefined && s.to === undefined && s.epoch === undefined) return undefined;
  const parts: string[] = [];
  if (s.from !== undefined || s.to !== undefined) parts.push(`${s.from ?? 'nowhere'} → ${s.to ?? 'nowhere'}`);
  if (s.epoch !== undefined) parts.push(`epoch ${s.epoch}`);
  return parts.join(', ');
}

function outcomeText(s: OperationStory): string {
  if (s.status === 'running') return 'running';
  if (s.operation === 'controller') return s.status;
  return s.falseAlarm ? 'FALSE ALARM' : (s.outcome ?? s.status);
}

function stepLine(st: Step): string {
  const what = st.summary ?? `${st.kind === 'local-activity' ? 'local ' : ''}${st.name}${st.node ? ` on ${st.node}` : ''}`;
  const took = st.durationMs !== undefined ? ` (${formatMs(st.durationMs)})` : '';
  const how = st.outcome === 'completed' ? '' : ` — ${st.outcome}${st.detail ? `: ${st.detail}` : ''}`;
  return `${formatTime(st.at)}  ${what}${took}${how}`;
}

/** The window and the counts, in one line. */
function countsLine(t: Timeline): string {
  const by = Object.entries(t.counts.byOutcome).map(([k, n]) => `${n} ${k}`).join(', ');
  return `${t.counts.operations} operation(s)${by ? `: ${by}` : ''}; ${t.counts.falseAlarms} false alarm(s)`;
}

function scope(t: Timeline): string {
  return `cluster ${t.cluster ?? '?'}${t.group ? `, group ${t.group}` : ''}`;
}

/** The timeline for a terminal. */
export function renderText(t: Timeline): string {
  const out: string[] = [`History of ${scope(t)}, ${formatTime(t.since)} to ${formatTime(t.until)} UTC`, countsLine(t), ''];
  type Row = { at: number; lines: string[] };
  const rows: Row[] = [];
  for (const s of t.operations) {
    const head = [operationTitle(s), s.trigger ? `(${s.trigger})` : undefined, movement(s), outcomeText(s), s.durationMs !== undefined ? formatMs(s.durationMs) : undefined].filter(Boolean).join('  ');
    const lines = [`${formatTime(s.startedAt)}  ${head}`];
    if (s.phases.length > 0 && s.operation !== 'controller') lines.push(`    phases: ${phasesText(s.phases)}`);
    if (s.reason) lines.push(`    why: ${s.reason}`);
    if (s.failure && !s.falseAlarm) lines.push(`    failure: ${s.failure}`);
    for (const a of s.attempts.filter((x) => x.outcome !== 'started' && x.outcome !== 'healthy')) lines.push(`    ${a.node ?? (a.at !== undefined ? formatTime(a.at) : '')} ${a.outcome}: ${a.detail}`);
    lines.push(`    ${s.workflowId} (run ${s.runId})`);
    rows.push({ at: s.startedAt, lines });
  }
  for (const e of t.nodeEvents) rows.push({ at: e.at, lines: [`${formatTime(e.at)}  node ${e.node} ${e.to}${e.reporter ? ` (seen by ${e.reporter}${e.detail ? `: ${e.detail}` : ''})` : ''}`] });
  rows.sort((a, b) => a.at - b.at);
  for (const r of rows) out.push(...r.lines);
  if (rows.length === 0) out.push('nothing happened in this window');
  return lines(out);
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** The timeline as a Markdown report for an incident ticket. */
export function renderMarkdown(t: Timeline): string {
  const ops = t.operations.filter((s) => s.operation !== 'controller');
  const runs = t.operations.filter((s) => s.operation === 'controller');
  const out: string[] = [
    `# HA-OSCAR history: ${scope(t)}`,
    '',
    `Window: ${formatTime(t.since)} to ${formatTime(t.until)} UTC. ${countsLine(t)}.`,
    '',
    '## Operations',
    '',
  ];
  if (ops.length === 0) out.push('None in this window.');
  else {
    out.push('| Started (UTC) | Operation | Trigger | Nodes, epoch | Outcome | Duration | Phases |', '|---|---|---|---|---|---|---|');
    for (const s of ops) {
      out.push(`| ${formatTime(s.startedAt)} | ${cell(operationTitle(s))} | ${cell(s.trigger ?? '')} | ${cell(movement(s) ?? '')} | ${s.falseAlarm ? '**false alarm**' : cell(outcomeText(s))} | ${s.durationMs !== undefined ? formatMs(s.durationMs) : 'running'} | ${cell(phasesText(s.phases.filter((p) => p.name !== 'total')))} |`);
    }
  }
  const notes = ops.filter((s) => s.reason || s.failure || s.attempts.some((a) => a.outcome !== 'started' && a.outcome !== 'healthy'));
  if (notes.length > 0) {
    out.push('', '## Details', '');
    for (const s of notes) {
      out.push(`- **${formatTime(s.startedAt)} ${cell(operationTitle(s))}** (\`${s.workflowId}\`, run \`${s.runId}\`)`);
      if (s.reason) out.push(`  - why: ${cell(s.reason)}`);
      if (s.failure && !s.falseAlarm) out.push(`  - failure: ${cell(s.failure)}`);
      for (const a of s.attempts.filter((x) => x.outcome !== 'started' && x.outcome !== 'healthy')) out.push(`  - ${a.node ?? (a.at !== undefined ? formatTime(a.at) : '')} ${a.outcome}: ${cell(a.detail)}`);
    }
  }
  if (t.nodeEvents.length > 0) {
    out.push('', '## Node events (as the controller received them)', '', '| Time (UTC) | Node | Now | Seen by | Detail |', '|---|---|---|---|---|');
    for (const e of t.nodeEvents) out.push(`| ${formatTime(e.at)} | ${e.node} | ${e.to} | ${e.reporter ?? ''} | ${cell(e.detail ?? '')} |`);
  }
  if (runs.length > 0) {
    out.push('', '## Controller runs', '');
    for (const r of runs) out.push(`- ${formatTime(r.startedAt)} to ${r.endedAt !== undefined ? formatTime(r.endedAt) : 'now'}: ${r.status} (\`${r.workflowId}\`, run \`${r.runId}\`)`);
  }
  return lines(out);
}

/** One operation in detail (`haoscar history show`): its story and every step. */
export function renderOperation(s: OperationStory, format: 'text' | 'markdown'): string {
  const md = format === 'markdown';
  const out: string[] = [md ? `# ${operationTitle(s)}` : operationTitle(s)];
  const field = (k: string, v: string | undefined) => {
    if (v !== undefined && v !== '') out.push(md ? `- **${k}**: ${cell(v)}` : `  ${k.padEnd(9)} ${v}`);
  };
  if (md) out.push('');
  field('workflow', `${s.workflowId} (run ${s.runId})`);
  field('summary', s.summary);
  field('started', `${formatTime(s.startedAt)} UTC`);
  field('ended', s.endedAt !== undefined ? `${formatTime(s.endedAt)} UTC (${formatMs(s.durationMs ?? 0)})` : 'still running');
  field('trigger', s.trigger);
  field('why', s.reason);
  field('by', s.parent);
  field('outcome', outcomeText(s));
  field('nodes', movement(s));
  field('phases', phasesText(s.phases));
  field('failure', s.failure);
  for (const a of s.attempts) field('attempt', `${a.node ?? (a.at !== undefined ? formatTime(a.at) : '')} ${a.outcome}: ${a.detail}`);
  out.push('', md ? '## Steps' : 'Steps:', '');
  if (s.steps.length === 0) out.push(md ? 'None.' : '  none');
  for (const st of s.steps) out.push(md ? `- ${cell(stepLine(st))}` : `  ${stepLine(st)}`);
  const msgs = s.messages;
  if (msgs.length > 0) {
    out.push('', md ? '## Messages received' : 'Messages received:', '');
    for (const m of msgs.slice(-200)) out.push(`${md ? '- ' : '  '}${formatTime(m.at)}  ${m.kind} ${m.name}`);
  }
  return lines(out);
}
