import type { HealthTransitionRecord } from "../kernel";
import type { TransitionQuery } from "../ports";

/** Reads transitions of one entity, as `StoreTransaction.listTransitions` does. */
export type ListTransitions = (query: TransitionQuery) => Promise<HealthTransitionRecord[]>;

/**
 * The part of an entity's transition log (in sequence order) from which `statusBefore(log, t)`
 * gives, for every `t ≥ since`, what it gives over the whole log; read in a few queries instead
 * of the whole log, so processing a maintenance boundary costs what happened since the window
 * started, not the entity's history.
 *
 * `statusBefore` walks the log in sequence order with the running maximum of `occurredAt` and
 * stops at the first transition whose running maximum reaches `t`: call it `first(t)`. Every
 * transition before `first(since)` is earlier than `since`, so for `t ≥ since` the walk never
 * stops before `first(since)` and reads nothing before the transition just ahead of it. The
 * suffix is therefore that predecessor (when there is one) and every transition after it:
 * - `first(since)` is the lowest sequence with `occurredAt ≥ since` (one read: `from: since`);
 * - the transitions after it that are earlier than `since` (out of timestamp order), and the
 *   predecessor, are the highest sequences with `occurredAt < since` down to the first one
 *   below `first(since)` (reads of `to: since` with a doubling `limit`: one read of one row
 *   unless runs arrived out of order);
 * - when no transition is at or after `since`, the suffix is the newest transition alone.
 *
 * With `upTo`, every read leaves out the transitions above that sequence: the suffix of the log as
 * it was when `upTo` was its newest sequence (for reads outside a transaction; see
 * `logForAvailability`).
 */
export async function logSuffixSince(
  list: ListTransitions,
  entityId: string,
  since: Date,
  upTo = Number.POSITIVE_INFINITY,
): Promise<HealthTransitionRecord[]> {
  const within = (rows: HealthTransitionRecord[]) => rows.filter((row) => row.sequence <= upTo);
  const after = within(await list({ entityId, from: since }));
  const first = after[0];
  if (first === undefined) return newest(list, entityId, within);
  for (let limit = 1; ; limit *= 2) {
    const read = await list({ entityId, to: since, limit });
    const earlier = within(read);
    let predecessorAt = earlier.length - 1;
    while (predecessorAt >= 0 && (earlier[predecessorAt] as HealthTransitionRecord).sequence > first.sequence) predecessorAt -= 1;
    // Found the predecessor, or read every earlier transition (then `first` opens the log).
    if (predecessorAt !== -1 || read.length < limit) {
      return mergeBySequence(earlier.slice(Math.max(predecessorAt, 0)), after);
    }
  }
}

/** The newest transition `within` keeps, alone (none for an empty log): one read of one row unless some are left out. */
async function newest(
  list: ListTransitions,
  entityId: string,
  within: (rows: HealthTransitionRecord[]) => HealthTransitionRecord[],
): Promise<HealthTransitionRecord[]> {
  for (let limit = 1; ; limit *= 2) {
    const read = await list({ entityId, limit });
    const kept = within(read);
    if (kept.length > 0) return kept.slice(-1);
    if (read.length < limit) return [];
  }
}

/** Two lists in sequence order with no sequence in common, merged in sequence order. */
function mergeBySequence(a: readonly HealthTransitionRecord[], b: readonly HealthTransitionRecord[]): HealthTransitionRecord[] {
  const merged: HealthTransitionRecord[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    const next = j >= b.length || (i < a.length && (a[i] as HealthTransitionRecord).sequence < (b[j] as HealthTransitionRecord).sequence);
    merged.push((next ? a[i++] : b[j++]) as HealthTransitionRecord);
  }
  return merged;
}

/** What `computeAvailability` needs of an entity's log for windows from `from` on (see `logForAvailability`). */
export interface AvailabilityLog {
  /** A contiguous part of the log, in sequence order, up to its newest transition. */
  readonly transitions: HealthTransitionRecord[];
  /** The latest `occurredAt` of the transitions before the first one of `transitions`, when that matters. */
  readonly notBefore?: Date;
}

/**
 * The part of an entity's log from which `computeAvailability` gives, for windows from `from` on,
 * what it gives over the whole log; read in a few queries, so that it costs what happened since
 * `from` and the incident open at `from`, not the entity's history.
 *
 * Availability walks the log as `statusBefore` does (`logSuffixSince`), and needs from before
 * `from` only the status there and, when an incident is open at `from` (for its MTTR), the time it
 * started: when the entity left healthy. Every transition before `first(from)` (the lowest
 * sequence at or after `from`) takes effect before `from`, so:
 * - healthy at `from` (or nothing before `first(from)`): the suffix of `logSuffixSince` is enough;
 * - an incident open at `from`: the log from its start `s` on (the newest transition out of
 *   healthy before `first(from)`, found by reading the highest sequences earlier than `from`
 *   with a doubling `limit`), and the time from which `s` takes effect: the latest `occurredAt`
 *   before it in the log, which only the transitions later than `s`'s own time can raise (one
 *   read of `(occurredAt of s, from)`: the incident's own transitions, unless runs arrived out of
 *   order). An incident whose start retention deleted stays without a start, as over the whole log.
 *
 * The reads are separate statements. A caller outside a transaction passes `upTo`, the entity's
 * sequence read before them, and every read leaves out what committed since, so that all of them
 * read the log as it was then (a transition at or after `from` committed between two reads,
 * followed by a late one before `from`, would otherwise be half seen). Retention deletes a prefix
 * of the log: when the lowest transition used is still there after the reads, nothing used was
 * deleted, and the part read is the same before and after a prune that ran meanwhile; when it is
 * gone, the reads start over (a prune between two reads could otherwise drop a predecessor the
 * first read's rows need, and give shares neither log gives).
 */
export async function logForAvailability(list: ListTransitions, entityId: string, from: Date, upTo?: number): Promise<AvailabilityLog> {
  for (let attempt = 1; ; attempt += 1) {
    const log = await readForAvailability(list, entityId, from, upTo);
    const lowest = log.transitions[0];
    if (upTo === undefined || lowest === undefined || (await stillLogged(list, lowest))) return log;
    if (attempt === MAX_READ_ATTEMPTS) {
      throw new Error(`the transition log of ${JSON.stringify(entityId)} lost rows during each of ${MAX_READ_ATTEMPTS} reads (retention running?)`);
    }
  }
}

/** How many times `logForAvailability` reads again after retention deleted what it had read. */
const MAX_READ_ATTEMPTS = 5;

/** Whether `transition` is still in its entity's log (one read of the rows of its millisecond). */
async function stillLogged(list: ListTransitions, transition: HealthTransitionRecord): Promise<boolean> {
  const at = Date.parse(transition.occurredAt);
  const rows = await list({ entityId: transition.entityId, from: new Date(at), to: new Date(at + 1) });
  return rows.some((row) => row.sequence === transition.sequence);
}

async function readForAvailability(list: ListTransitions, entityId: string, from: Date, upTo: number | undefined): Promise<AvailabilityLog> {
  const suffix = await logSuffixSince(list, entityId, from, upTo);
  const head = suffix[0];
  // `head` is before `from` unless it opens the log; its new status is the one at `from`.
  if (head === undefined || Date.parse(head.occurredAt) >= from.getTime() || head.newStatus === "healthy") {
    return { transitions: suffix };
  }
  for (let limit = 16; ; limit *= 2) {
    // The `limit` highest sequences before `from`: every sequence up to `head`'s is among them down
    // to the lowest one read (all of them are earlier than `from`), and some later ones may be.
    const read = await list({ entityId, to: from, limit });
    const earlier = read.filter((transition) => transition.sequence <= head.sequence);
    let start = earlier.length - 1;
    while (start >= 0 && !leavesHealthy(earlier[start] as HealthTransitionRecord)) start -= 1;
    if (start === -1 && read.length === limit) continue;
    // Without a start (retention deleted it, or the log opens inside the incident) the walk over the
    // whole log has none either: the part from `head` on gives the same.
    if (start === -1) return { transitions: suffix };
    const incident = earlier[start] as HealthTransitionRecord;
    const later = await list({ entityId, from: new Date(Date.parse(incident.occurredAt) + 1), to: from });
    let notBefore: number | undefined;
    for (const transition of later) {
      if (transition.sequence < incident.sequence) notBefore = Math.max(notBefore ?? -Infinity, Date.parse(transition.occurredAt));
    }
    return {
      transitions: mergeBySequence(earlier.slice(start), suffix.slice(1)),
      ...(notBefore === undefined ? {} : { notBefore: new Date(notBefore) }),
    };
  }
}

const leavesHealthy = (transition: HealthTransitionRecord): boolean => transition.previousStatus === "healthy" && transition.newStatus !== "healthy";
