/**
 * Signalling a process group: commands, services and rsync run in their own group (spawned
 * detached), so that a timeout or a stop reaches whatever they started too.
 */

/**
 * Sends `signal` to every process of the group led by `pgid`.
 * @returns false when there is no such group any more (already gone).
 * @throws for anything else (EPERM: not ours to signal).
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw error;
  }
}
