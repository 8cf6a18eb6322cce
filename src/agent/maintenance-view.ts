/**
 * What the agent knows of maintenance (workflows/maintenance-plan.ts): learnt from the
 * controller's answers to the ownership questions it already asks (lease renewals, the announce
 * check), so it survives an agent restart (the controller keeps it) and needs no message of its
 * own. A group in maintenance is unmanaged: its monitors report and act on nothing (no heal through
 * Temporal, no local heal). When maintenance ends, the resources still failing are reported then.
 *
 * Until the first answer (an agent that starts while Temporal is unreachable) nothing is known to
 * be in maintenance: such an agent heals locally as it would otherwise.
 */
import { maintenanceRefusal, type MaintenanceRefusal } from '../../workflows/maintenance-plan.js';
import type { MaintenanceState } from '../../workflows/shared.js';

/** The groups that entered and left maintenance between two answers. Pure. */
export function maintenanceChanges(before: MaintenanceState | undefined, after: MaintenanceState | undefined): { entered: string[]; left: string[] } {
  const was = new Set(Object.keys(before?.groups ?? {}));
  const is = new Set(Object.keys(after?.groups ?? {}));
  return { entered: [...is].filter((g) => !was.has(g)).sort(), left: [...was].filter((g) => !is.has(g)).sort() };
}

export class MaintenanceView {
  private state: MaintenanceState | undefined;

  /** The controller's latest answer's maintenance (undefined: none). @returns the groups that entered and left it. */
  learn(maintenance: MaintenanceState | undefined): { entered: string[]; left: string[] } {
    const changes = maintenanceChanges(this.state, maintenance);
    this.state = maintenance;
    return changes;
  }

  /** Why `action` is not done about `group` now (it is in maintenance), or undefined. */
  refusal(group: string, action: string): MaintenanceRefusal | undefined {
    return maintenanceRefusal(this.state, group, action);
  }
}
