/**
 * DRBD 9 SIMULATOR for tests — not DRBD. The DRBD kernel module cannot load on the machines
 * HA-OSCAR's tests run on, so `drbdadm` and `drbdsetup` in this directory stand in for the real
 * tools, and `drbd-sim` lets a test do what only the world can do to real DRBD (write data,
 * cut the network, crash a node, set the resync speed).
 *
 * What it copies from DRBD 9 / drbd-utils 9 (read in LINBIT/drbd-utils `user/v9/drbdsetup.c`,
 * `drbdadm_main.c`, `shared_main.c`, `drbd_strings.c`, the kernel's `drbd_nl.c`, and the DRBD 9
 * User's Guide, chapter "Troubleshooting and error recovery"):
 * - `drbdsetup status RES [--json] [--verbose]`, `drbdadm status RES`: the same text and JSON
 *   layout, field names and number formats (`percent-in-sync` with two decimals, out-of-sync
 *   in KiB, sync details while resyncing).
 * - Failures as drbdsetup's check_error() prints them: `RES: State change failed: (-1)
 *   Multiple primaries not allowed by config` exit 11, `(-2) Need access to UpToDate data`
 *   exit 17, `(-12) Device is held open by someone` exit 11, `RES: Failure: (158) Unknown
 *   resource` exit 10, `(125) Device has a net-config (use disconnect first)` exit 10 (connect
 *   when not StandAlone), `(123) --discard-my-data not allowed when primary.` exit 10,
 *   `(161) Minor or volume exists already (delete it first)` exit 10 (`up` twice); drbdadm
 *   adds `Command 'drbdsetup …' terminated with exit code N` and exits with N; an unknown
 *   resource is `'RES' not defined in your config (for this host).` exit 1 from drbdadm and
 *   `RES: No such resource` exit 10 from `drbdsetup status`. `disconnect` of a StandAlone
 *   connection succeeds, and `down` of a resource that is not up succeeds, as in DRBD.
 * - Data generations the way DRBD decides a resync: a node that changes data while cut off
 *   from a peer (writes or is promoted as Primary, or is Primary when it loses the peer) gets
 *   a new current UUID and marks what it wrote as out of sync for that peer. At the handshake
 *   the side that changed becomes SyncSource, the other SyncTarget (disk Inconsistent until
 *   done); when both changed it is split brain: both connections go StandAlone and the kernel
 *   log says `Split-Brain detected but unresolved, dropping connection!` (after-sb-*pri
 *   disconnect, the default). `connect --discard-my-data` on one side picks it as the split
 *   brain victim, which then becomes SyncTarget. A Primary that would have to become
 *   SyncTarget drops the connection instead (rr-conflict disconnect, the default).
 * - Resync drains out-of-sync KiB over time at a rate `drbd-sim rate` sets; nothing runs in
 *   the background: every call catches the clock up first.
 *
 * Deliberately left out: volumes other than 0, quorum, fencing (it behaves as `fencing
 * dont-care`, the default, so a disk that was UpToDate attaches UpToDate), allow-two-primaries,
 * auto-promote, protocols, and most drbdsetup commands.
 *
 * State: one JSON file per resource in $DRBD_SIM_DIR, changed under a mkdir lock (two "nodes"
 * call at once) and replaced by rename, so a reader never sees half a file. The calling node
 * is $DRBD_SIM_NODE.
 */
import fs from 'node:fs';
import path from 'node:path';

const DEFAULT_SIZE_KIB = 1024 * 1024;
const DEFAULT_RATE_KIBPS = 100 * 1024;
const LOCK_WAIT_MS = 10_000;
/** A lock directory older than this was left by a killed process. */
const LOCK_STALE_MS = 5_000;

class SimExit extends Error {
  constructor(code, stderr = '', stdout = '') {
    super(stderr || `exit ${code}`);
    this.code = code;
    this.stderr = stderr;
    this.stdout = stdout;
  }
}

/** The entry point of the three executables; sets process.exitCode, never throws. */
export function main(tool, argv) {
  const out = { stdout: '', stderr: '' };
  let code = 0;
  try {
    if (tool === 'drbdadm') code = drbdadm(argv, out);
    else if (tool === 'drbdsetup') code = drbdsetup(argv, out);
    else code = control(argv, out);
  } catch (error) {
    if (error instanceof SimExit) {
      out.stdout += error.stdout;
      out.stderr += error.stderr;
      code = error.code;
    } else {
      out.stderr += `${tool} (DRBD simulator): internal error: ${error instanceof Error ? error.stack : String(error)}\n`;
      code = 70;
    }
  }
  if (out.stdout) process.stdout.write(out.stdout);
  if (out.stderr) process.stderr.write(out.stderr);
  process.exitCode = code;
}

// ------------------------------------------------------------------------------ environment
function simDir() {
  const dir = process.env.DRBD_SIM_DIR;
  if (!dir) throw new SimExit(20, 'DRBD simulator: DRBD_SIM_DIR is not set (the directory holding the simulated resources)\n');
  return dir;
}

function callingNode() {
  const node = process.env.DRBD_SIM_NODE;
  if (!node) throw new SimExit(20, 'DRBD simulator: DRBD_SIM_NODE is not set (the node this command runs on)\n');
  return node;
}

function stateFile(res) {
  return path.join(simDir(), `${res}.json`);
}

function sleepMs(ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Runs fn(state) under the resource's lock; fn may change state, which is then saved. */
function withResource(res, fn, { create = false } = {}) {
  const dir = simDir();
  fs.mkdirSync(dir, { recursive: true });
  const lock = path.join(dir, `${res}.lock`);
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      fs.mkdirSync(lock);
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      try {
        if (Date.now() - fs.statSync(lock).mtimeMs > LOCK_STALE_MS) {
          fs.rmdirSync(lock);
          continue;
        }
      } catch {
        // released meanwhile
      }
      if (Date.now() > deadline) throw new SimExit(20, `DRBD simulator: ${lock} held for ${LOCK_WAIT_MS} ms; remove it if no simulator process runs\n`);
      sleepMs(2 + Math.floor(Math.random() * 5));
    }
  }
  try {
    const file = stateFile(res);
    let state;
    if (fs.existsSync(file)) state = JSON.parse(fs.readFileSync(file, 'utf8'));
    else if (!create) state = undefined;
    const now = Date.now();
    if (state) settle(state, now);
    const result = fn(state, now);
    const next = result?.state ?? state;
    if (next) {
      settle(next, now);
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, JSON.stringify(next, null, 1));
      fs.renameSync(tmp, file);
    }
    return result?.value;
  } finally {
    fs.rmdirSync(lock);
  }
}

function configuredResources() {
  const dir = simDir();
  if (!fs.existsSync(dir)) return [];
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -'.json'.length))
    .sort();
}

// ------------------------------------------------------------------------------ the model
function newState(name, nodes, { sizeKiB, rateKiBps, minor, up }) {
  const state = { version: 1, name, sizeKiB, rateKiBps, minor, nodes, cuts: [], seq: 1, log: [], node: {} };
  const uuid = nextUuid(state);
  for (const n of nodes) {
    const peers = {};
    for (const p of nodes) {
      if (p === n) continue;
      peers[p] = { want: up ? 'connect' : 'standalone', cstate: up ? 'Connected' : 'StandAlone', repl: up ? 'Established' : 'Off', lastSynced: uuid, oosKiB: 0, discard: false };
    }
    state.node[n] = { up, role: 'Secondary', disk: 'UpToDate', current: uuid, opened: 0, written: 0, peers };
  }
  return state;
}

/** A DRBD-looking 64-bit UUID; deterministic, so a test run can be replayed. */
function nextUuid(state) {
  state.seq += 1;
  const hi = (Math.imul(state.seq, 0x9e3779b1) >>> 0).toString(16).toUpperCase().padStart(8, '0');
  const lo = (Math.imul(state.seq ^ 0x5bd1e995, 0x85ebca6b) >>> 0).toString(16).toUpperCase().padStart(8, '0');
  return `${hi}${lo}`;
}

function nodeId(state, n) {
  return state.nodes.indexOf(n);
}

function isCut(state, a, b) {
  return state.cuts.some(([x, y]) => (x === a && y === b) || (x === b && y === a));
}

function klog(state, node, text, peer) {
  const where = peer ? `drbd ${state.name}/0 drbd${state.minor} ${peer}` : `drbd ${state.name}/0 drbd${state.minor}`;
  state.log.push({ node, time: new Date().toISOString(), text: `${where}: ${text}` });
  if (state.log.length > 500) state.log.splice(0, state.log.length - 500);
}

function isConnected(state, a, b) {
  return state.node[a].up && state.node[b].up && state.node[a].peers[b].cstate === 'Connected';
}

/** The sync between a and b, if one runs: { source, target, sync }. */
function syncBetween(state, a, b) {
  const sa = state.node[a].peers[b].sync;
  if (sa) return { source: b, target: a, sync: sa };
  const sb = state.node[b].peers[a].sync;
  if (sb) return { source: a, target: b, sync: sb };
  return undefined;
}

/**
 * A node starts a new data generation when it changes data while cut off from a peer; the
 * peers it is still in sync with take the new UUID along (DRBD sends it to them).
 */
function rotateIfUnchanged(state, n, cutOffPeers) {
  const me = state.node[n];
  if (!cutOffPeers.some((p) => me.current === me.peers[p].lastSynced)) return;
  const old = me.current;
  me.current = nextUuid(state);
  klog(state, n, `new current UUID: ${me.current} (was ${old})`);
  for (const p of state.nodes) {
    if (p === n || !isConnected(state, n, p)) continue;
    const peer = state.node[p];
    if (me.peers[p].repl !== 'Established' && me.peers[p].repl !== 'SyncSource') continue;
    if (peer.current === old) peer.current = me.current;
    me.peers[p].lastSynced = me.current;
    peer.peers[n].lastSynced = me.current;
  }
}

/** Catches the world up with the clock and the wishes of both ends of every connection. */
function settle(state, now) {
  // Resyncs first: a finished one changes what a handshake below would decide.
  for (const t of state.nodes) {
    for (const s of state.nodes) {
      if (s === t) continue;
      const sync = state.node[t].peers[s]?.sync;
      if (!sync) continue;
      const elapsed = Math.max(0, now - sync.lastMs);
      sync.remainingKiB = Math.max(0, sync.remainingKiB - (state.rateKiBps * elapsed) / 1000);
      sync.lastMs = now;
      if (sync.remainingKiB <= 0) finishSync(state, s, t, now);
    }
  }
  for (let i = 0; i < state.nodes.length; i += 1) {
    for (let j = i + 1; j < state.nodes.length; j += 1) {
      const a = state.nodes[i];
      const b = state.nodes[j];
      const A = state.node[a];
      const B = state.node[b];
      const can = A.up && B.up && A.peers[b].want === 'connect' && B.peers[a].want === 'connect' && !isCut(state, a, b);
      const connected = A.peers[b].cstate === 'Connected' && B.peers[a].cstate === 'Connected' && A.up && B.up;
      if (connected && !can) loseConnection(state, a, b);
      else if (!connected && can) handshake(state, a, b, now);
      else if (!connected) {
        for (const [x, y] of [[a, b], [b, a]]) {
          const X = state.node[x];
          if (!X.up) continue;
          X.peers[y].cstate = X.peers[y].want === 'connect' ? 'Connecting' : 'StandAlone';
          X.peers[y].repl = 'Off';
        }
      }
    }
  }
}

function loseConnection(state, a, b) {
  const running = syncBetween(state, a, b);
  if (running) {
    const left = Math.ceil(running.sync.remainingKiB);
    state.node[running.target].peers[running.source].oosKiB = left;
    state.node[running.source].peers[running.target].oosKiB = left;
    delete state.node[running.target].peers[running.source].sync;
  }
  for (const [x, y] of [[a, b], [b, a]]) {
    const X = state.node[x];
    if (!X.up) continue;
    const was = X.peers[y].cstate;
    X.peers[y].cstate = X.peers[y].want === 'connect' ? 'Connecting' : 'StandAlone';
    X.peers[y].repl = 'Off';
    klog(state, x, `conn( ${was} -> ${X.peers[y].cstate} )`, y);
    // A Primary that loses a peer starts a new generation at once, as DRBD 9 does.
    if (X.role === 'Primary') rotateIfUnchanged(state, x, [y]);
  }
}

function handshake(state, a, b, now) {
  const A = state.node[a];
  const B = state.node[b];
  const aChanged = A.current !== A.peers[b].lastSynced;
  const bChanged = B.current !== B.peers[a].lastSynced;
  let source;
  let target;
  if (A.disk === 'Inconsistent' && B.disk === 'UpToDate') [source, target] = [b, a];
  else if (B.disk === 'Inconsistent' && A.disk === 'UpToDate') [source, target] = [a, b];
  else if (A.disk === 'Inconsistent' && B.disk === 'Inconsistent') return establish(state, a, b);
  else if (aChanged && bChanged) {
    if (A.peers[b].discard && !B.peers[a].discard) [source, target] = [b, a];
    else if (B.peers[a].discard && !A.peers[b].discard) [source, target] = [a, b];
    else return splitBrain(state, a, b);
  } else if (aChanged) [source, target] = [a, b];
  else if (bChanged) [source, target] = [b, a];
  else if (A.current !== B.current) {
    for (const [x, y] of [[a, b], [b, a]]) {
      klog(state, x, 'Unrelated data, aborting!', y);
      dropToStandAlone(state, x, y);
    }
    return undefined;
  } else return establish(state, a, b);

  const S = state.node[source];
  const T = state.node[target];
  if (T.role === 'Primary') {
    // rr-conflict disconnect (the default): the Primary refuses to have its data overwritten.
    klog(state, target, 'I shall become SyncTarget, but I am primary!', source);
    dropToStandAlone(state, target, source);
    S.peers[target].cstate = S.peers[target].want === 'connect' ? 'Connecting' : 'StandAlone';
    S.peers[target].repl = 'Off';
    return undefined;
  }
  A.peers[b].discard = false;
  B.peers[a].discard = false;
  let amount = Math.min(state.sizeKiB, S.peers[target].oosKiB + T.peers[source].oosKiB);
  if (amount === 0 && T.disk === 'Inconsistent') amount = state.sizeKiB;
  for (const [x, y] of [[a, b], [b, a]]) {
    const X = state.node[x];
    klog(state, x, `conn( ${X.peers[y].cstate} -> Connected )`, y);
    X.peers[y].cstate = 'Connected';
  }
  if (amount === 0) {
    T.current = S.current;
    return establish(state, a, b);
  }
  S.peers[target].repl = 'SyncSource';
  T.peers[source].repl = 'SyncTarget';
  T.disk = 'Inconsistent';
  T.peers[source].sync = { totalKiB: amount, remainingKiB: amount, startedMs: now, lastMs: now };
  klog(state, source, `repl( Off -> SyncSource ) pdsk( DUnknown -> Inconsistent ) (${amount} KiB out of sync)`, target);
  klog(state, target, `repl( Off -> SyncTarget ) disk( UpToDate -> Inconsistent ) (${amount} KiB out of sync)`, source);
  return undefined;
}

function establish(state, a, b) {
  const A = state.node[a];
  const B = state.node[b];
  for (const [x, y] of [[a, b], [b, a]]) {
    const X = state.node[x];
    if (X.peers[y].cstate !== 'Connected') klog(state, x, `conn( ${X.peers[y].cstate} -> Connected ) repl( Off -> Established )`, y);
    X.peers[y].cstate = 'Connected';
    X.peers[y].repl = 'Established';
    X.peers[y].discard = false;
    X.peers[y].oosKiB = 0;
  }
  if (A.current === B.current) {
    A.peers[b].lastSynced = A.current;
    B.peers[a].lastSynced = B.current;
  }
  return undefined;
}

function finishSync(state, source, target, now) {
  const S = state.node[source];
  const T = state.node[target];
  const sync = T.peers[source].sync;
  const seconds = Math.max(1, Math.round((now - sync.startedMs) / 1000));
  delete T.peers[source].sync;
  T.disk = 'UpToDate';
  T.current = S.current;
  T.peers[source].lastSynced = S.current;
  S.peers[target].lastSynced = S.current;
  T.peers[source].oosKiB = 0;
  S.peers[target].oosKiB = 0;
  T.peers[source].repl = 'Established';
  S.peers[target].repl = 'Established';
  const line = `Resync done (total ${seconds} sec; paused 0 sec; ${Math.round(sync.totalKiB / seconds)} K/sec)`;
  klog(state, target, line, source);
  klog(state, source, line, target);
}

function splitBrain(state, a, b) {
  for (const [x, y] of [[a, b], [b, a]]) {
    klog(state, x, 'Split-Brain detected but unresolved, dropping connection!', y);
    klog(state, x, `helper command: /sbin/drbdadm split-brain ${state.name}`, y);
    dropToStandAlone(state, x, y);
  }
  return undefined;
}

function dropToStandAlone(state, x, y) {
  const X = state.node[x];
  X.peers[y].want = 'standalone';
  X.peers[y].cstate = 'StandAlone';
  X.peers[y].repl = 'Off';
  X.peers[y].discard = false;
  klog(state, x, 'conn( Connecting -> StandAlone )', y);
}

// ------------------------------------------------------------------------- state changes
// Each returns an error as drbdsetup reports it ({ rv, text }) or undefined on success.
const FAIL = {
  unknownResource: (res) => ({ code: 10, text: `${res}: Failure: (158) Unknown resource\n` }),
  twoPrimaries: (res) => ({ code: 11, text: `${res}: State change failed: (-1) Multiple primaries not allowed by config\n` }),
  noUpToDate: (res) => ({ code: 17, text: `${res}: State change failed: (-2) Need access to UpToDate data\n` }),
  inUse: (res) => ({ code: 11, text: `${res}: State change failed: (-12) Device is held open by someone\n` }),
  netConfigured: (res) => ({ code: 10, text: `${res}: Failure: (125) Device has a net-config (use disconnect first)\n` }),
  discardImpossible: (res) => ({ code: 10, text: `${res}: Failure: (123) --discard-my-data not allowed when primary.\n` }),
  minorExists: (res) => ({ code: 10, text: `${res}: Failure: (161) Minor or volume exists already (delete it first)\n` }),
  invalidPeer: (res) => ({ code: 10, text: `${res}: Failure: (162) Invalid configuration request\nadditional info from kernel:\nunknown peer node id\n` }),
};

function doPrimary(state, n, { force }) {
  const me = state.node[n];
  if (!me.up) return FAIL.unknownResource(state.name);
  if (me.role === 'Primary') return undefined;
  const peers = state.nodes.filter((p) => p !== n);
  if (peers.some((p) => isConnected(state, n, p) && state.node[p].role === 'Primary')) return FAIL.twoPrimaries(state.name);
  const upToDatePeer = peers.some((p) => isConnected(state, n, p) && state.node[p].disk === 'UpToDate');
  if (me.disk !== 'UpToDate' && !upToDatePeer) {
    if (!force || me.disk === 'Diskless') return FAIL.noUpToDate(state.name);
    klog(state, n, `disk( ${me.disk} -> UpToDate ) (forced)`);
    me.disk = 'UpToDate';
  }
  klog(state, n, 'role( Secondary -> Primary )');
  me.role = 'Primary';
  const cutOff = peers.filter((p) => !isConnected(state, n, p));
  if (cutOff.length > 0) rotateIfUnchanged(state, n, cutOff);
  return undefined;
}

function doSecondary(state, n) {
  const me = state.node[n];
  if (!me.up) return FAIL.unknownResource(state.name);
  if (me.role !== 'Primary') return undefined;
  if (me.opened > 0) return FAIL.inUse(state.name);
  klog(state, n, 'role( Primary -> Secondary )');
  me.role = 'Secondary';
  return undefined;
}

function doUp(state, n) {
  const me = state.node[n];
  if (me.up) return FAIL.minorExists(state.name);
  me.up = true;
  me.role = 'Secondary';
  me.opened = 0;
  for (const p of Object.keys(me.peers)) {
    me.peers[p].want = 'connect';
    me.peers[p].cstate = 'Connecting';
    me.peers[p].repl = 'Off';
    me.peers[p].discard = false;
  }
  klog(state, n, `disk( Diskless -> Attaching -> ${me.disk} )`);
  return undefined;
}

function doDown(state, n) {
  const me = state.node[n];
  if (!me.up) return undefined;
  if (me.opened > 0) return FAIL.inUse(state.name);
  if (me.role === 'Primary') doSecondary(state, n);
  for (const p of Object.keys(me.peers)) me.peers[p].want = 'standalone';
  settle(state, Date.now());
  me.up = false;
  for (const p of Object.keys(me.peers)) {
    me.peers[p].cstate = 'StandAlone';
    me.peers[p].repl = 'Off';
  }
  klog(state, n, 'disk( UpToDate -> Detaching -> Diskless ); resource down');
  return undefined;
}

function doConnect(state, n, peer, { discardMyData }) {
  const me = state.node[n];
  if (!me.up) return FAIL.unknownResource(state.name);
  if (!me.peers[peer]) return FAIL.invalidPeer(state.name);
  if (me.peers[peer].cstate !== 'StandAlone') return FAIL.netConfigured(state.name);
  if (discardMyData && me.role === 'Primary') return FAIL.discardImpossible(state.name);
  me.peers[peer].want = 'connect';
  me.peers[peer].discard = Boolean(discardMyData);
  me.peers[peer].cstate = 'Connecting';
  klog(state, n, `conn( StandAlone -> Connecting )${discardMyData ? ' (discard-my-data)' : ''}`, peer);
  return undefined;
}

function doDisconnect(state, n, peer) {
  const me = state.node[n];
  if (!me.up) return FAIL.unknownResource(state.name);
  if (!me.peers[peer]) return FAIL.invalidPeer(state.name);
  // SS_ALREADY_STANDALONE counts as success in DRBD's disconnect.
  if (me.peers[peer].cstate === 'StandAlone') return undefined;
  me.peers[peer].want = 'standalone';
  settle(state, Date.now());
  me.peers[peer].cstate = 'StandAlone';
  me.peers[peer].repl = 'Off';
  return undefined;
}

// -------------------------------------------------------------------------------- drbdsetup
function parseOptions(args, known) {
  const options = new Set();
  const positional = [];
  for (const arg of args) {
    if (arg === '--') continue;
    if (arg.startsWith('--')) {
      const name = arg.slice(2).split('=')[0];
      if (!known.includes(name)) throw new SimExit(20, `drbdsetup: unrecognized option '${arg}'\n`);
      options.add(name);
    } else if (/^-[a-z]+$/.test(arg)) {
      for (const letter of arg.slice(1)) {
        const name = known.find((k) => k[0] === letter);
        if (!name) throw new SimExit(20, `drbdsetup: invalid option -- '${letter}'\n`);
        options.add(name);
      }
    } else positional.push(arg);
  }
  return { options, positional };
}

function drbdsetup(argv, out) {
  const node = callingNode();
  const [command, ...rest] = argv;
  switch (command) {
    case 'status': {
      const { options, positional } = parseOptions(rest, ['json', 'verbose', 'statistics', 'color']);
      const name = positional[0] ?? 'all';
      return status(node, name, { json: options.has('json'), verbose: options.has('verbose'), statistics: options.has('statistics') }, out);
    }
    case 'role': {
      const res = requireArg(rest, 'resource');
      return onResource(res, node, out, (state) => {
        if (!state.node[node].up) return FAIL.unknownResource(res);
        out.stdout += `${state.node[node].role}\n`;
        return undefined;
      });
    }
    case 'primary': {
      const { options, positional } = parseOptions(rest, ['force', 'overwrite-data-of-peer']);
      const res = requireArg(positional, 'resource');
      return onResource(res, node, out, (state) => doPrimary(state, node, { force: options.has('force') || options.has('overwrite-data-of-peer') }));
    }
    case 'secondary': {
      const res = requireArg(rest, 'resource');
      return onResource(res, node, out, (state) => doSecondary(state, node));
    }
    case 'down': {
      const res = requireArg(rest, 'resource');
      return onResource(res, node, out, (state) => doDown(state, node), { missingOk: true });
    }
    case 'connect':
    case 'disconnect': {
      const { options, positional } = parseOptions(rest, ['discard-my-data', 'tentative', 'force']);
      const res = requireArg(positional, 'resource');
      const peerId = Number(requireArg(positional.slice(1), 'peer_node_id'));
      return onResource(res, node, out, (state) => {
        const peer = state.nodes[peerId];
        if (peer === undefined || peer === node) return FAIL.invalidPeer(res);
        return command === 'connect' ? doConnect(state, node, peer, { discardMyData: options.has('discard-my-data') }) : doDisconnect(state, node, peer);
      });
    }
    case 'new-minor': {
      const res = requireArg(rest, 'resource');
      return onResource(res, node, out, (state) => doUp(state, node));
    }
    case undefined:
      throw new SimExit(20, 'USAGE: drbdsetup command {arguments} [options]\n(DRBD simulator: status, role, primary, secondary, connect, disconnect, down, new-minor)\n');
    default:
      throw new SimExit(20, `drbdsetup: Unknown command '${command}'\n`);
  }
}

function requireArg(args, name) {
  const value = args[0];
  if (value === undefined) throw new SimExit(20, `Missing argument '${name}'\n`);
  return value;
}

/** A drbdsetup command on one resource: the kernel knows it only while it is up. */
function onResource(res, node, out, change, { missingOk = false } = {}) {
  const exists = fs.existsSync(stateFile(res));
  if (!exists) {
    if (missingOk) return 0;
    out.stderr += FAIL.unknownResource(res).text;
    return 10;
  }
  const failure = withResource(res, (state) => {
    if (!state.node[node]) return { value: FAIL.unknownResource(res) };
    return { value: change(state) };
  });
  if (!failure) return 0;
  out.stderr += failure.text;
  return failure.code;
}

function status(node, name, options, out) {
  const names = name === 'all' ? configuredResources() : [name];
  const shown = [];
  for (const res of names) {
    if (!fs.existsSync(stateFile(res))) continue;
    const snapshot = withResource(res, (state, now) => ({ value: state.node[node]?.up ? { state, now } : undefined }));
    if (snapshot) shown.push(snapshot);
  }
  if (options.json) {
    // puts("[") … puts(",") between resources … puts("]\n"), as drbdsetup's status_cmd.
    out.stdout += `[\n${shown.map(({ state, now }) => `${resourceJson(state, node, now)}\n`).join(',\n')}]\n\n`;
  } else if (shown.length === 0 && name === 'all') {
    out.stdout += '# No currently configured DRBD found.\n';
  } else {
    out.stdout += shown.map(({ state, now }) => resourceText(state, node, now, options)).join('');
  }
  if (shown.length === 0 && name !== 'all') {
    out.stderr += `${name}: No such resource\n`;
    return 10;
  }
  return 0;
}

function fixed2(x) {
  return (Math.round(x * 100) / 100).toFixed(2);
}

/** What node n sees of its peer p, as the kernel would report it. */
function peerView(state, n, p, now) {
  const me = state.node[n];
  const peer = state.node[p];
  const conn = me.peers[p];
  const connected = conn.cstate === 'Connected' && peer.up;
  const running = connected ? syncBetween(state, n, p) : undefined;
  const outOfSyncKiB = running ? Math.ceil(running.sync.remainingKiB) : conn.oosKiB;
  let details;
  if (running) {
    const total = running.sync.totalKiB;
    const done = total - running.sync.remainingKiB;
    const dtMs = Math.max(1, now - running.sync.startedMs);
    const mibps = ((done * 2) / dtMs) * (1000 / 2048);
    const toGo = Math.ceil(running.sync.remainingKiB) * 2;
    details = {
      rsTotal: total * 2,
      dtMs,
      doneSectors: Math.round(done * 2),
      want: state.rateKiBps / 1024,
      mibps,
      eta: done > 0 ? Math.round((dtMs * 1e-3 * toGo) / (done * 2)) : 987654321,
      percentDone: (100 * done) / total,
    };
  }
  return {
    cstate: conn.cstate,
    peerRole: connected ? peer.role : 'Unknown',
    repl: connected ? conn.repl : 'Off',
    peerDisk: connected ? peer.disk : 'DUnknown',
    outOfSyncKiB,
    percentInSync: state.sizeKiB === 0 ? 0 : 100 * (1 - outOfSyncKiB / state.sizeKiB),
    details,
  };
}

function resourceJson(state, n, now) {
  const me = state.node[n];
  const lines = [];
  lines.push('{');
  lines.push(`  "name": "${state.name}",`);
  lines.push(`  "node-id": ${nodeId(state, n)},`);
  lines.push(`  "role": "${me.role}",`);
  lines.push('  "suspended": false,');
  lines.push('  "write-ordering": "flush",');
  lines.push('  "devices": [');
  lines.push('    {');
  lines.push('      "volume": 0,');
  lines.push(`      "minor": ${state.minor},`);
  lines.push(`      "disk-state": "${me.disk}",`);
  lines.push('      "client": false,');
  lines.push('      "quorum": true,');
  lines.push(`      "size": ${state.sizeKiB},`);
  lines.push('      "read": 0,');
  lines.push(`      "written": ${me.written},`);
  lines.push('      "al-writes": 0,');
  lines.push('      "bm-writes": 0,');
  lines.push('      "upper-pending": 0,');
  lines.push('      "lower-pending": 0');
  lines.push('    } ],');
  lines.push('  "connections": [');
  const connections = state.nodes
    .filter((p) => p !== n)
    .map((p) => {
      const v = peerView(state, n, p, now);
      const c = [];
      c.push('    {');
      c.push(`      "peer-node-id": ${nodeId(state, p)},`);
      c.push(`      "name": "${p}",`);
      c.push(`      "connection-state": "${v.cstate}", `);
      c.push('      "congested": false,');
      c.push(`      "peer-role": "${v.peerRole}",`);
      c.push('      "ap-in-flight": 0,');
      c.push('      "rs-in-flight": 0,');
      c.push('      "peer_devices": [');
      c.push('        {');
      c.push('          "volume": 0,');
      c.push(`          "replication-state": "${v.repl}",`);
      c.push(`          "peer-disk-state": "${v.peerDisk}",`);
      c.push('          "peer-client": false,');
      c.push('          "resync-suspended": "no",');
      c.push('          "received": 0,');
      c.push('          "sent": 0,');
      c.push(`          "out-of-sync": ${v.outOfSyncKiB},`);
      c.push('          "pending": 0,');
      c.push('          "unacked": 0,');
      c.push(`          "has-sync-details": ${v.details ? 'true' : 'false'},`);
      c.push('          "has-online-verify-details": false,');
      c.push(`          "percent-in-sync": ${fixed2(v.percentInSync)}${v.details ? ',' : ''}`);
      if (v.details) {
        const d = v.details;
        c.push(`          "rs-total": ${d.rsTotal},`);
        c.push(`          "rs-dt-start-ms": ${d.dtMs},`);
        c.push('          "rs-paused-ms": 0,');
        c.push(`          "rs-dt0-ms": ${d.dtMs},`);
        c.push(`          "rs-db0-sectors": ${d.doneSectors},`);
        c.push(`          "rs-dt1-ms": ${d.dtMs},`);
        c.push(`          "rs-db1-sectors": ${d.doneSectors},`);
        c.push('          "rs-failed": 0,');
        c.push('          "rs-same-csum": 0,');
        c.push(`          "want": ${fixed2(d.want)},`);
        c.push(`          "db0/dt0 [MiB/s]": ${fixed2(d.mibps)},`);
        c.push(`          "db1/dt1 [MiB/s]": ${fixed2(d.mibps)},`);
        c.push(`          "estimated-seconds-to-finish": ${d.eta},`);
        c.push(`          "db/dt [MiB/s]": ${fixed2(d.mibps)},`);
        c.push(`          "percent-resync-done": ${fixed2(d.percentDone)}`);
      }
      c.push('        } ]');
      c.push('    }');
      return c.join('\n');
    });
  // drbdsetup closes the last peer device, connection and list on one line: `} ]`, `} ]`.
  return `${lines.join('\n')}\n${connections.join(',\n')} ]\n}`;
}

/**
 * drbdsetup's wrap_printf layout: each item starts with a space; at the start of a line it is
 * indented instead (2 for the disk, 2 for a connection, 4 for its peer device).
 */
function resourceText(state, n, now, { verbose, statistics }) {
  const me = state.node[n];
  const lines = [];
  lines.push(`${state.name}${verbose ? ` node-id:${nodeId(state, n)}` : ''} role:${me.role}${verbose ? ' suspended:no' : ''}`);
  if (verbose && statistics) lines.push('    write-ordering:flush');
  const disk = [verbose ? `volume:0 minor:${state.minor} disk:${me.disk}` : `disk:${me.disk}`];
  if (verbose) disk.push('quorum:yes');
  lines.push(`  ${disk.join(' ')}`);
  if (statistics) lines.push(`      ${verbose ? `size:${state.sizeKiB} ` : ''}read:0 written:${me.written}${verbose ? ' al-writes:0 bm-writes:0 upper-pending:0 lower-pending:0 al-suspended:no' : ''}${verbose ? ' blocked:no' : ''}`);
  for (const p of state.nodes.filter((x) => x !== n)) {
    const v = peerView(state, n, p, now);
    const conn = [p];
    if (verbose) conn.push(`node-id:${nodeId(state, p)}`);
    if (verbose || v.cstate !== 'Connected') conn.push(`connection:${v.cstate}`);
    if (verbose || v.cstate === 'Connected') conn.push(`role:${v.peerRole}`);
    if (verbose) conn.push('congested:no ap-in-flight:0 rs-in-flight:0');
    lines.push(`  ${conn.join(' ')}`);
    if (!(verbose || statistics || v.cstate === 'Connected')) continue;
    const pd = [];
    if (verbose) pd.push('volume:0');
    if (verbose || !['Off', 'Established'].includes(v.repl)) pd.push(`replication:${v.repl}`);
    if (verbose || statistics || v.repl !== 'Off' || v.peerDisk !== 'DUnknown') {
      pd.push(`peer-disk:${v.peerDisk}`);
      if (v.details) pd.push(`done:${fixed2(v.details.percentDone)}`);
      if (verbose) pd.push('resync-suspended:no');
    }
    lines.push(`    ${pd.join(' ')}`);
    if (statistics) {
      const stats = [`received:0 sent:0`];
      if (verbose || v.outOfSyncKiB) stats.push(`out-of-sync:${v.outOfSyncKiB}`);
      if (verbose) stats.push('pending:0 unacked:0');
      lines.push(`        ${stats.join(' ')}`);
    }
  }
  return `${lines.join('\n')}\n\n`;
}

// ---------------------------------------------------------------------------------- drbdadm
/**
 * drbdadm reads /etc/drbd.d, then runs drbdsetup; here the resource's state file stands for
 * its configuration. A failing drbdsetup is reported as drbdadm's m__system() does.
 */
function drbdadm(argv, out) {
  const node = callingNode();
  const options = [];
  const words = [];
  for (const arg of argv) {
    if (arg === '--') continue;
    if (arg.startsWith('-')) options.push(arg);
    else words.push(arg);
  }
  const [command, ...resources] = words;
  const known = ['up', 'down', 'primary', 'secondary', 'connect', 'disconnect', 'status', 'role'];
  if (command === undefined) throw new SimExit(1, 'USAGE: drbdadm COMMAND [OPTION...] {all|RESOURCE...}\n(DRBD simulator: up, down, primary, secondary, connect, disconnect, status, role)\n\nNo command specified\n');
  if (!known.includes(command)) throw new SimExit(1, `drbdadm: Unknown command '${command}'\n`);
  const allowed = { primary: ['--force', '--overwrite-data-of-peer'], connect: ['--discard-my-data'], status: ['--verbose', '--statistics', '-v', '-s', '--json'], disconnect: ['--force'] }[command] ?? [];
  for (const option of options) {
    if (!allowed.includes(option.split('=')[0])) throw new SimExit(1, `drbdadm: unrecognized option '${option}'\ntry 'drbdadm help ${command}'\n`);
  }
  if (command === 'status' && resources.length === 0) {
    return runSetup(['status', ...options.filter((o) => o !== '--json')], out);
  }
  if (resources.length === 0) throw new SimExit(1, `USAGE: drbdadm ${command} [OPTION...] {all|RESOURCE...}\n\nNo resource names specified\n`);
  let rv = 0;
  for (const res of resources) {
    const file = stateFile(res);
    const configured = fs.existsSync(file) && JSON.parse(fs.readFileSync(file, 'utf8')).nodes.includes(node);
    if (!configured) throw new SimExit(1, `'${res}' not defined in your config (for this host).\n`);
    const r = runOne(command, res, options, node, out);
    if (r >= 20) return r;
    rv = Math.max(rv, r);
  }
  return rv;
}

function runOne(command, res, options, node, out) {
  const state = JSON.parse(fs.readFileSync(stateFile(res), 'utf8'));
  const peers = state.nodes.filter((p) => p !== node);
  switch (command) {
    case 'up':
      return runSetup(['new-minor', res, String(state.minor), '0'], out);
    case 'down':
    case 'secondary':
    case 'role':
      return runSetup([command, res], out);
    case 'primary':
      return runSetup(['primary', res, ...(options.some((o) => o === '--force' || o === '--overwrite-data-of-peer') ? ['--force'] : [])], out);
    case 'status':
      return runSetup(['status', res, ...options.filter((o) => o !== '--json')], out);
    case 'connect':
    case 'disconnect': {
      let rv = 0;
      for (const p of peers) {
        const args = [command, res, String(nodeId(state, p)), ...(options.includes('--discard-my-data') ? ['--discard-my-data'] : [])];
        rv = Math.max(rv, runSetup(args, out));
      }
      return rv;
    }
    default:
      throw new SimExit(1, `drbdadm: Unknown command '${command}'\n`);
  }
}

function runSetup(args, out) {
  const sub = { stdout: '', stderr: '' };
  let code;
  try {
    code = drbdsetup(args, sub);
  } catch (error) {
    if (!(error instanceof SimExit)) throw error;
    sub.stderr += error.stderr;
    code = error.code;
  }
  out.stdout += sub.stdout;
  out.stderr += sub.stderr;
  if (code >= 10) out.stderr += `Command 'drbdsetup ${args.join(' ')}' terminated with exit code ${code}\n`;
  return code;
}

// ---------------------------------------------------------------------------------- drbd-sim
const CONTROL_USAGE = `usage: drbd-sim COMMAND ...   (control of the DRBD 9 simulator; state in $DRBD_SIM_DIR)
  init RES --nodes a,b[,c] [--size-kib N] [--rate KIB_PER_S] [--minor N] [--down]
                           new resource, every node up, connected, UpToDate, Secondary
                           (--down: configured but not up)
  write NODE RES KIB       the Primary NODE writes KIB; peers it is cut off from fall behind
  rate RES KIB_PER_S       resync speed
  cut RES [A B]            network between A and B (default: all) goes down
  heal RES [A B]           network back
  crash NODE RES           NODE dies (no demotion, no clean disconnect)
  open NODE RES            something holds NODE's device open (a mount)
  close NODE RES           ... and lets go
  split-brain RES [A B]    cut A-B, promote both, write on both, heal: split brain
  show RES                 the simulator's state as JSON
  dmesg NODE RES           NODE's simulated kernel log for RES
`;

function control(argv, out) {
  const [command, ...args] = argv;
  const need = (n) => {
    if (args.length < n) throw new SimExit(1, `drbd-sim ${command}: missing arguments\n${CONTROL_USAGE}`);
  };
  const existing = (res, fn) => {
    if (!fs.existsSync(stateFile(res))) throw new SimExit(1, `drbd-sim: no simulated resource ${res} in ${simDir()} (drbd-sim init ${res} --nodes a,b)\n`);
    return withResource(res, fn);
  };
  const knownNode = (state, n) => {
    if (!state.node[n]) throw new SimExit(1, `drbd-sim: ${n} is not a node of ${state.name} (nodes: ${state.nodes.join(', ')})\n`);
    return state.node[n];
  };
  switch (command) {
    case 'init': {
      need(1);
      const res = args[0];
      const flag = (name) => {
        const i = args.indexOf(name);
        return i >= 0 ? args[i + 1] : undefined;
      };
      const nodes = (flag('--nodes') ?? '').split(',').filter(Boolean);
      if (nodes.length < 2 || new Set(nodes).size !== nodes.length) throw new SimExit(1, 'drbd-sim init: --nodes needs two or more distinct names, e.g. --nodes a,b\n');
      const number = (name, fallback) => {
        const text = flag(name);
        if (text === undefined) return fallback;
        const value = Number(text);
        if (!Number.isFinite(value) || value < 0) throw new SimExit(1, `drbd-sim init: ${name} expects a number, not ${text}\n`);
        return value;
      };
      withResource(res, () => ({ state: newState(res, nodes, { sizeKiB: number('--size-kib', DEFAULT_SIZE_KIB), rateKiBps: number('--rate', DEFAULT_RATE_KIBPS), minor: number('--minor', 0), up: !args.includes('--down') }) }), { create: true });
      return 0;
    }
    case 'write': {
      need(3);
      const [n, res, kibText] = args;
      const kib = Number(kibText);
      if (!Number.isFinite(kib) || kib <= 0) throw new SimExit(1, `drbd-sim write: KIB must be a positive number, not ${kibText}\n`);
      existing(res, (state) => {
        write(state, n, kib, knownNode);
        return undefined;
      });
      return 0;
    }
    case 'rate': {
      need(2);
      const [res, text] = args;
      const rate = Number(text);
      if (!Number.isFinite(rate) || rate < 0) throw new SimExit(1, `drbd-sim rate: KIB_PER_S must be a number, not ${text}\n`);
      existing(res, (state) => {
        state.rateKiBps = rate;
        return undefined;
      });
      return 0;
    }
    case 'cut':
    case 'heal': {
      need(1);
      const [res, a, b] = args;
      existing(res, (state) => {
        const pairs = a && b ? [[a, b]] : state.nodes.flatMap((x, i) => state.nodes.slice(i + 1).map((y) => [x, y]));
        for (const [x, y] of pairs) {
          knownNode(state, x);
          knownNode(state, y);
          state.cuts = state.cuts.filter(([p, q]) => !((p === x && q === y) || (p === y && q === x)));
          if (command === 'cut') {
            state.cuts.push([x, y]);
            for (const [m, o] of [[x, y], [y, x]]) if (state.node[m].up && state.node[m].peers[o].cstate === 'Connected') klog(state, m, 'PingAck did not arrive in time.', o);
          }
        }
        return undefined;
      });
      return 0;
    }
    case 'crash': {
      need(2);
      const [n, res] = args;
      existing(res, (state) => {
        const me = knownNode(state, n);
        if (!me.up) return undefined;
        // The peers notice only the lost connection: no demotion, no new UUID on the dead node.
        const wasPrimary = me.role === 'Primary';
        me.role = 'Secondary';
        me.opened = 0;
        me.up = false;
        for (const p of Object.keys(me.peers)) {
          me.peers[p].cstate = 'StandAlone';
          me.peers[p].repl = 'Off';
          delete me.peers[p].sync;
          if (state.node[p].peers[n].sync) {
            state.node[p].peers[n].oosKiB = Math.ceil(state.node[p].peers[n].sync.remainingKiB);
            me.peers[p].oosKiB = state.node[p].peers[n].oosKiB;
            delete state.node[p].peers[n].sync;
          }
        }
        klog(state, n, `node crashed${wasPrimary ? ' while Primary' : ''}`);
        return undefined;
      });
      return 0;
    }
    case 'open':
    case 'close': {
      need(2);
      const [n, res] = args;
      existing(res, (state) => {
        const me = knownNode(state, n);
        if (command === 'open') {
          if (!me.up || me.role !== 'Primary') throw new SimExit(1, `drbd-sim open: /dev/drbd${state.minor} on ${n} is ${me.up ? me.role : 'not up'}; DRBD lets only a Primary open it for writing (EMEDIUMTYPE)\n`);
          me.opened += 1;
        } else me.opened = Math.max(0, me.opened - 1);
        return undefined;
      });
      return 0;
    }
    case 'split-brain': {
      need(1);
      const res = args[0];
      existing(res, (state, now) => {
        const [a, b] = args.length >= 3 ? [args[1], args[2]] : state.nodes;
        knownNode(state, a);
        knownNode(state, b);
        for (const n of [a, b]) if (!state.node[n].up) throw new SimExit(1, `drbd-sim split-brain: ${n} is not up (drbdadm up ${res} there first)\n`);
        state.cuts.push([a, b]);
        settle(state, now);
        for (const n of [a, b]) {
          const failure = doPrimary(state, n, { force: false });
          if (failure) throw new SimExit(1, `drbd-sim split-brain: promoting ${n} failed: ${failure.text}`);
          write(state, n, 4, knownNode);
        }
        state.cuts = state.cuts.filter(([p, q]) => !((p === a && q === b) || (p === b && q === a)));
        return undefined;
      });
      return 0;
    }
    case 'show': {
      need(1);
      existing(args[0], (state) => {
        out.stdout += `${JSON.stringify(state, null, 2)}\n`;
        return undefined;
      });
      return 0;
    }
    case 'dmesg': {
      need(2);
      const [n, res] = args;
      existing(res, (state) => {
        knownNode(state, n);
        out.stdout += state.log.filter((l) => l.node === n).map((l) => `${l.time} ${l.text}\n`).join('');
        return undefined;
      });
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
      out.stdout += CONTROL_USAGE;
      return command === undefined ? 1 : 0;
    default:
      throw new SimExit(1, `drbd-sim: unknown command ${command}\n${CONTROL_USAGE}`);
  }
}

function write(state, n, kib, knownNode) {
  const me = knownNode(state, n);
  if (!me.up || me.role !== 'Primary') throw new SimExit(1, `drbd-sim write: ${n} is ${me.up ? me.role : 'not up'}; DRBD refuses writes except on a Primary (EMEDIUMTYPE)\n`);
  const cutOff = state.nodes.filter((p) => p !== n && !(isConnected(state, n, p) && ['Established', 'SyncSource'].includes(me.peers[p].repl)));
  if (cutOff.length > 0) rotateIfUnchanged(state, n, cutOff);
  for (const p of cutOff) me.peers[p].oosKiB = Math.min(state.sizeKiB, me.peers[p].oosKiB + kib);
  me.written += kib;
}
