/**
 * What the agent and the lease guard (bin/haoscar-guard) say to each other: the agent writes
 * `hold` and `drop` lines into the guard's control FIFO; the guard rewrites its `state` file.
 * Pure: encoding, decoding and the boot-clock arithmetic, so that both sides are unit-tested.
 */

/** What releasing one resource takes, for a guard that cannot ask the agent. */
export type GuardAction =
  /** Delete the address (with its prefix) from the device: done first, so clients stop reaching the node. */
  | { kind: 'vip'; device: string; address: string }
  /** SIGKILL every process of the cgroup (cgroup.kill) and wait until it is empty. */
  | { kind: 'cgroup'; path: string }
  /** SIGKILL the process group and wait until no live member is left. */
  | { kind: 'pgid'; pgid: number }
  /** `systemctl kill --kill-whom=all -s SIGKILL UNIT`, then the unit must not be active. */
  | { kind: 'unit'; name: string }
  /** Run a command after every process is gone (DRBD demotion, a command's stop), bounded. */
  | { kind: 'run'; timeoutMs: number; argv: string[] };

/** The guard's view of one group. */
export interface GuardGroupState {
  group: string;
  epoch: number;
  /** On the boot clock, centiseconds (see bootClockCs). */
  deadlineCs: number;
  /** held: deadline ahead; released: the guard let go at the deadline; failed: it could not (still held). */
  status: 'held' | 'released' | 'failed';
  detail?: string;
}

export interface GuardState {
  pid: number;
  /** The boot clock when the guard last wrote its state. */
  nowCs: number;
  bootId: string;
  watchdog: 'off' | 'armed' | 'starving';
  groups: Map<string, GuardGroupState>;
}

/** Kept as is by the guard's decoder; everything else is %XX. */
const PLAIN = /[A-Za-z0-9._/+@=,-]/;

/** Percent-encoding of one field (no spaces or colons survive: they separate fields). */
export function encodeField(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const c = String.fromCharCode(byte);
    out += byte < 0x80 && PLAIN.test(c) ? c : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

export function decodeField(text: string): string {
  return Buffer.from(text.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16))), 'latin1').toString('utf8');
}

/** Names the guard accepts for a group (the config's names are a subset). */
const GROUP_NAME = /^[A-Za-z0-9_.-]+$/;

function actionField(action: GuardAction): string {
  switch (action.kind) {
    case 'vip':
      return ['vip', encodeField(action.device), encodeField(action.address)].join(':');
    case 'cgroup':
      return ['cgroup', encodeField(action.path)].join(':');
    case 'pgid':
      if (!Number.isInteger(action.pgid) || action.pgid <= 1) throw new RangeError(`not a process group the guard may kill: ${action.pgid}`);
      return `pgid:${action.pgid}`;
    case 'unit':
      return ['unit', encodeField(action.name)].join(':');
    case 'run':
      if (action.argv.length === 0) throw new RangeError('a run action needs a command');
      return ['run', String(Math.max(1, Math.ceil(action.timeoutMs))), ...action.argv.map(encodeField)].join(':');
  }
}

/** One `hold` line (with its newline); small enough to be written atomically into a FIFO. */
export function holdLine(group: string, epoch: number, deadlineCs: number, actions: GuardAction[]): string {
  if (!GROUP_NAME.test(group)) throw new RangeError(`group name '${group}' cannot be handed to the guard`);
  const line = `hold ${group} ${Math.trunc(epoch)} ${Math.trunc(deadlineCs)}${actions.map((a) => ` ${actionField(a)}`).join('')}\n`;
  // PIPE_BUF: a longer write could interleave with another one.
  if (Buffer.byteLength(line) > 4096) throw new RangeError(`the guard's message for group '${group}' is longer than 4096 bytes (too many resources?)`);
  return line;
}

export function dropLine(group: string, epoch: number): string {
  if (!GROUP_NAME.test(group)) throw new RangeError(`group name '${group}' cannot be handed to the guard`);
  return `drop ${group} ${Math.trunc(epoch)}\n`;
}

/**
 * Reads the guard's state file. @returns undefined when it is incomplete (caught while the
 * guard rewrote it: read it again) or not the guard's.
 */
export function parseGuardState(text: string): GuardState | undefined {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  if (lines.at(-1) !== 'end') return undefined;
  const head = lines[0]?.split(' ') ?? [];
  if (head[0] !== 'guard' || head.length < 5) return undefined;
  const watchdog = head[4] === 'armed' || head[4] === 'starving' ? head[4] : 'off';
  const state: GuardState = { pid: Number(head[1]), nowCs: Number(head[2]), bootId: head[3]!, watchdog, groups: new Map() };
  if (!Number.isInteger(state.pid) || !Number.isFinite(state.nowCs)) return undefined;
  for (const line of lines.slice(1, -1)) {
    const w = line.split(' ');
    // group NAME EPOCH DEADLINE_CS STATUS DETAIL ACTION...
    if (w[0] !== 'group' || w.length < 6) return undefined;
    const status = w[4] === 'held' || w[4] === 'released' || w[4] === 'failed' ? w[4] : undefined;
    if (!status) return undefined;
    const detail = w[5] && w[5] !== '-' ? decodeField(w[5]) : undefined;
    state.groups.set(w[1]!, { group: w[1]!, epoch: Number(w[2]), deadlineCs: Number(w[3]), status, ...(detail ? { detail } : {}) });
  }
  return state;
}

/** /proc/uptime's first field ("12345.67") as centiseconds, the guard's clock. */
export function parseUptimeCs(text: string): number {
  const match = /^(\d+)\.(\d{2})/.exec(text);
  if (!match) throw new Error(`unexpected /proc/uptime content: '${text.slice(0, 40)}'`);
  return Number(match[1]) * 100 + Number(match[2]);
}
