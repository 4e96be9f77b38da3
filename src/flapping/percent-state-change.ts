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
  return percentOf(statuses);
}

/**
 * `percentStateChange` of a history kept as one letter per status (oldest first, any one letter
 * per status, as entity records keep it), read in place: equal letters are equal statuses.
 */
export function percentStateChangeOfLetters(history: string): number {
  return percentOf(history);
}

function percentOf(history: ArrayLike<string>): number {
  const pairs = FLAP_HISTORY_LENGTH - 1;
  const start = Math.max(0, history.length - FLAP_HISTORY_LENGTH);
  const offset = FLAP_HISTORY_LENGTH - (history.length - start);
  let total = 0;
  for (let index = start + 1; index < history.length; index += 1) {
    if (history[index] === history[index - 1]) continue;
    // Position of this change among the 20 possible ones, 0 = oldest.
    const position = offset + index - start - 1;
    total += 0.75 + (0.5 * position) / (pairs - 1);
  }
  return (total * 100) / pairs;
}
