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

/**
 * The weight of the change at position `p` (0 = oldest of 20) is `0.75 + 0.5·p/19 = (57 + 2p)/76`,
 * so the percentage is `Σ(57 + 2p) · 5 / 76`. The sum is kept in integers and divided once: summing
 * the weights as floating-point numbers put a whole percentage a hair off (40 % came out as
 * 39.99999999999999, 30 % as 30.000000000000007), and a flap at exactly its threshold was missed.
 * One division of exact integers gives the nearest double, exact whenever the percentage is.
 */
function percentOf(history: ArrayLike<string>): number {
  const start = Math.max(0, history.length - FLAP_HISTORY_LENGTH);
  const offset = FLAP_HISTORY_LENGTH - (history.length - start);
  let units = 0;
  for (let index = start + 1; index < history.length; index += 1) {
    if (history[index] === history[index - 1]) continue;
    // Position of this change among the 20 possible ones, 0 = oldest.
    const position = offset + index - start - 1;
    units += 57 + 2 * position;
  }
  return (units * 5) / 76;
}
