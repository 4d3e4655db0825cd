/**
 * Whether a partition thread's silence is its own: its host reported (its own heartbeat, relayed
 * on the same ordered channel as the thread's ticks) for at least `hangTimeoutMs` after the
 * thread's last tick. A gap the whole host shared (the host, or the launcher, starved by a loaded
 * machine) delays the host's reports as much as the thread's ticks, so it never counts as a hang.
 * Times are when the launcher read each report, in ms on one monotonic clock.
 *
 * @param lastTickAt when the thread's last tick was read (or its start deadline, before the first)
 * @param hostHeardAt when the host's latest heartbeat was read
 */
export function threadSilenceIsOwn(lastTickAt: number, hostHeardAt: number, hangTimeoutMs: number): boolean {
  return hostHeardAt - lastTickAt >= hangTimeoutMs;
}
