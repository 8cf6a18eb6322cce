/**
 * `haoscar doctor`: checks this node before (and while) it runs in a cluster — the programs
 * its configuration needs with the packages to install for its distribution, the secret, the
 * ports, Temporal, the clock, and (from its running agent's heartbeats) whether every peer has
 * the same secret and configuration. Each finding with the command that fixes it
 * (docs/doctor.md). Exits 0 all ok, 1 warnings, 2 errors.
 */
import { Command } from 'commander';
import { createExec } from '../exec.js';
import { createLogger } from '../log.js';
import { doctorExitCode, formatFindings } from '../doctor/finding.js';
import { runDoctor } from '../doctor/doctor.js';
import { EXIT, ExitWith } from './errors.js';
import { parseTimeout } from './options.js';
import { printJson } from './output.js';

interface DoctorFlags {
  config: string;
  node?: string;
  json?: boolean;
  timeout?: number;
}


export function doctorCommand(): Command {
  return new Command('doctor')
    .description("check this node: the programs and packages it needs, the secret, ports, Temporal, the clock, and that its peers have the same secret and configuration; each finding with its fix. Exit 0: all ok, 1: warnings, 2: errors")
    .requiredOption('-c, --config <file>', 'the cluster configuration', process.env.HAOSCAR_CONFIG ?? '/etc/haoscar/haoscar.yaml')
    .option('-n, --node <name>', "this node's name (default: the node whose addresses are this host's)", process.env.HAOSCAR_NODE)
    .option('--json', 'print the findings as JSON')
    .option('--timeout <duration>', 'how long each network check and command may take (default 5s)', parseTimeout)
    .action(async (flags: DoctorFlags) => {
      // Commands are logged at debug only: the report is the output.
      const exec = createExec(createLogger({ level: 'warn', name: 'haoscar-doctor' }));
      const report = await runDoctor({ configFile: flags.config, ...(flags.node !== undefined ? { node: flags.node } : {}), exec, timeoutMs: flags.timeout ?? 5000 });
      const exitCode = doctorExitCode(report.findings);
      if (flags.json) printJson({ ...report, exitCode });
      else {
        const head = [report.cluster ? `cluster ${report.cluster}` : undefined, report.node ? `node ${report.node}` : undefined, report.distribution?.name].filter(Boolean).join(', ');
        process.stdout.write(`haoscar doctor${head ? `: ${head}` : ''}\n${formatFindings(report.findings)}`);
      }
      if (exitCode !== EXIT.ok) throw new ExitWith(exitCode);
    });
}
