/**
 * The programs a node needs, from its configuration: what its resources' drivers run, what
 * its file sets and fencing run, and the Temporal CLI where it serves the embedded server.
 * Pure: which ones are there is looked up by the caller.
 */
import { join } from 'node:path';
import type { Config, Resource } from '../config/types.js';
import { agentPath } from '../drivers/ocf.js';
import { DEFAULT_INIT_DIR } from '../drivers/sysv.js';
import { SEND_UA } from '../drivers/vip.js';
import { parseVipAddress } from '../config/ip-address.js';

function isIPv6Vip(address: string): boolean {
  const vip = parseVipAddress(address);
  return !('problem' in vip) && vip.family === 6;
}

export interface RequiredTool {
  /** A program name (looked up on PATH) or a path. */
  tool: string;
  /** Why this node needs it: the resource, file set or setting. */
  why: string;
}

function resourceTools(r: Resource, where: string): RequiredTool[] {
  const why = `${where} (${r.type})`;
  const own = (() => {
    switch (r.type) {
      case 'vip':
        if (r.arpCount === 0) return [{ tool: 'ip', why }];
        return isIPv6Vip(r.address)
          ? [{ tool: 'ip', why }, { tool: SEND_UA, why: `${why}: unsolicited neighbour advertisements` }]
          : [{ tool: 'ip', why }, { tool: 'arping', why: `${why}: gratuitous ARP` }];
      case 'filesystem':
        return [{ tool: 'mount', why }, { tool: 'umount', why }, ...(r.fsck ? [{ tool: 'fsck', why: `${why}: fsck: true` }] : []), { tool: 'fuser', why: `${why}: who holds a busy mount point` }];
      case 'drbd':
        return [{ tool: r.drbdadm, why }, { tool: r.drbdsetup, why }];
      case 'command':
        return [r.start[0]!, r.stop[0]!, r.monitor[0]!].map((tool) => ({ tool, why }));
      case 'service':
        if (r.driver === 'systemd') return [{ tool: 'systemctl', why: `${why}: unit ${r.unit}` }];
        // The script the driver runs (a name, never a path: the schema), not a program on PATH.
        if (r.driver === 'sysv') return [{ tool: `${DEFAULT_INIT_DIR}/${r.script}`, why }];
        return [{ tool: r.command[0]!, why }];
      case 'ocf':
        return [{ tool: agentPath(r), why: `${why}: OCF agent ${r.agent}` }];
      case 'postgresql':
        return [
          ...['pg_ctl', 'pg_controldata', 'pg_rewind', 'pg_basebackup', 'psql'].map((p) => ({ tool: join(r.bin, p), why })),
          { tool: 'runuser', why: `${why}: its programs run as ${r.user}` },
        ];
    }
  })();
  const check =
    r.check.type === 'command' ? [{ tool: r.check.command[0]!, why: `${where}: its check` }]
    : r.check.type === 'icmp' ? [{ tool: 'ping', why: `${where}: its icmp check (iputils-ping)` }]
    : [];
  return [...own, ...check];
}

/**
 * What `node` needs, each program once (the first reason kept), in the order found: the
 * resources of the groups it may run, their file sets (rsync, ssh for `sync.transport: ssh`;
 * not in a one-node cluster, which has no standby), the other nodes' fence agents (this node
 * may have to fence them), and the Temporal CLI when `embeddedServer`.
 */
export function requiredTools(config: Config, node: string, opts: { embeddedServer: boolean }): RequiredTool[] {
  const out: RequiredTool[] = [];
  for (const group of config.groups.filter((g) => g.nodes.includes(node))) {
    for (const r of group.resources) out.push(...resourceTools(r, `resource ${group.name}/${r.name}`));
    if (group.fileSets.length > 0 && config.nodes.length > 1) {
      const why = `file set ${group.name}/${group.fileSets[0]!.name}`;
      out.push({ tool: config.sync.rsync, why });
      if (config.sync.transport === 'ssh') out.push({ tool: 'ssh', why: `${why} (sync.transport: ssh)` });
    }
  }
  for (const peer of config.nodes.filter((n) => n.name !== node && n.fence)) {
    out.push({ tool: peer.fence!.command[0]!, why: `fencing node ${peer.name}` });
  }
  if (opts.embeddedServer) out.push({ tool: 'temporal', why: 'the embedded Temporal server (haoscar server)' });
  const seen = new Set<string>();
  return out.filter((t) => (seen.has(t.tool) ? false : (seen.add(t.tool), true)));
}
