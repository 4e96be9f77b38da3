import type { HealthStatus } from "../status";

/** How many evaluated statuses the flap detector looks at (20 possible changes). */
export const FLAP_HISTORY_LENGTH = 21;

/**
 * Percent state change over the newest 21 statuses (oldest first), as Nagios computes it: each
 * change between neighbours is weighted linearly from 0.75 (oldest) to 1.25 (newest), and the
 * result is `Σw · 100 / 20`, between 0 and 100. With fewer than 21 statuses the history is
 * padded at the front with the first one (padding adds no change). An empty list gives 0.
 */
export function percentStateChange(statuses: readonly HealthStatus[]): number {
  const history = statuses.slice(-FLAP_HISTORY_LENGTH);
  const pairs = FLAP_HISTORY_LENGTH - 1;
  const offset = FLAP_HISTORY_LENGTH - history.length;
  let total = 0;
  for (let index = 1; index < history.length; index += 1) {
    if (history[index] === history[index - 1]) continue;
    // Position of this change among the 20 possible ones, 0 = oldest.
    const position = offset + index - 1;
    total += 0.75 + (0.5 * position) / (pairs - 1);
  }
  return (total * 100) / pairs;
}
