import { fc, test } from "@fast-check/vitest";
import { computeAvailability, statusBefore, type HealthStatus, type HealthTransitionRecord, type TransitionQuery } from "healthstate";
import { describe, expect, it } from "vitest";
import { logForAvailability, logSuffixSince } from "../../src/engine/log-suffix";

// Maintenance boundaries read each entity's log from the earliest due window's start on
// (`logSuffixSince`) instead of the whole log. `statusBefore` over that suffix must give what it
// gives over the whole log for every time from `since` on, and the suffix must be no more of the
// log than that needs.

const BASE = Date.parse("2026-11-30T08:00:00.000Z");
const iso = (minute: number) => new Date(BASE + minute * 60_000).toISOString();
const STATUSES: readonly HealthStatus[] = ["healthy", "degraded", "unhealthy"];

/** A log in sequence order (with gaps, as flapping events take sequences too) and chained statuses. */
function logOf(steps: readonly { readonly gap: number; readonly minute: number; readonly to: number }[]): HealthTransitionRecord[] {
  const log: HealthTransitionRecord[] = [];
  let sequence = 0;
  let status: HealthStatus = "healthy";
  for (const step of steps) {
    sequence += step.gap;
    const next = STATUSES.filter((candidate) => candidate !== status)[step.to] as HealthStatus;
    log.push({ entityId: "e", systemId: "s", environmentId: null, sequence, previousStatus: status, newStatus: next, occurredAt: iso(step.minute) });
    status = next;
  }
  return log;
}

/** `listTransitions` over `log` as the port defines it, counting the rows it returns. */
function lister(log: readonly HealthTransitionRecord[]) {
  const reads: TransitionQuery[] = [];
  let rows = 0;
  const list = (query: TransitionQuery): Promise<HealthTransitionRecord[]> => {
    reads.push(query);
    const matching = log.filter(
      (transition) =>
        (query.from === undefined || Date.parse(transition.occurredAt) >= query.from.getTime()) &&
        (query.to === undefined || Date.parse(transition.occurredAt) < query.to.getTime()),
    );
    const kept = query.limit === undefined ? matching : matching.slice(Math.max(0, matching.length - query.limit));
    rows += kept.length;
    return Promise.resolve(kept.map((transition) => ({ ...transition })));
  };
  return { list, reads, rows: () => rows };
}

const steps = fc.array(
  fc.record({ gap: fc.integer({ min: 1, max: 3 }), minute: fc.integer({ min: 0, max: 60 }), to: fc.integer({ min: 0, max: 1 }) }),
  { maxLength: 30 },
);

describe("logSuffixSince", () => {
  test.prop([steps, fc.integer({ min: -5, max: 65 }), fc.array(fc.integer({ min: 0, max: 70 }), { minLength: 1, maxLength: 5 }), fc.constantFrom(...STATUSES)])(
    "gives statusBefore over the whole log for every time from `since` on, from the log's suffix that starts just before the first transition at or after `since`",
    async (drawn, sinceMinute, laterBy, current) => {
      const log = logOf(drawn);
      const since = new Date(BASE + sinceMinute * 60_000);
      const source = lister(log);
      const suffix = await logSuffixSince(source.list, "e", since);
      for (const later of laterBy) {
        const time = iso(sinceMinute + later);
        expect(statusBefore(suffix, time, current), `status before ${time}`).toBe(statusBefore(log, time, current));
      }
      // Exactly the suffix from the predecessor of the first transition at or after `since`
      // (the newest transition alone when there is none; nothing for an empty log).
      const first = log.findIndex((transition) => Date.parse(transition.occurredAt) >= since.getTime());
      const expected = first === -1 ? log.slice(-1) : log.slice(Math.max(0, first - 1));
      expect(suffix).toEqual(expected);
    },
  );

  it("reads only what happened since, plus one row, when the log is in timestamp order", async () => {
    // 1,000 transitions a minute apart; the window started 3 minutes before the last one.
    const log = logOf(Array.from({ length: 1000 }, (_, index) => ({ gap: 1, minute: index, to: index % 2 })));
    const source = lister(log);
    const suffix = await logSuffixSince(source.list, "e", new Date(BASE + 997 * 60_000));
    expect(suffix.map((transition) => transition.sequence)).toEqual([997, 998, 999, 1000]);
    expect(source.rows()).toBe(4);
    expect(source.reads).toHaveLength(2);
  });

  it("reads further back, doubling its limit, past transitions that arrived out of timestamp order", async () => {
    // Sequences 1–10 at minutes 0–9; 11 at minute 30; then 12–16 back at minutes 1–5.
    const log = logOf([
      ...Array.from({ length: 10 }, (_, index) => ({ gap: 1, minute: index, to: 0 })),
      { gap: 1, minute: 30, to: 1 },
      ...Array.from({ length: 5 }, (_, index) => ({ gap: 1, minute: index + 1, to: 0 })),
    ]);
    const source = lister(log);
    const suffix = await logSuffixSince(source.list, "e", new Date(BASE + 20 * 60_000));
    expect(suffix.map((transition) => transition.sequence)).toEqual([10, 11, 12, 13, 14, 15, 16]);
    // `from` once, then `to` with limits 1, 2, 4 and 8 (the first to reach below 11).
    expect(source.reads.map((query) => query.limit ?? null)).toEqual([null, 1, 2, 4, 8]);
  });

  it("reads the newest transition alone when nothing happened since, and nothing of an empty log", async () => {
    const log = logOf([{ gap: 1, minute: 1, to: 0 }, { gap: 2, minute: 2, to: 1 }]);
    expect(await logSuffixSince(lister(log).list, "e", new Date(BASE + 10 * 60_000))).toEqual([log[1]]);
    expect(await logSuffixSince(lister([]).list, "e", new Date(BASE))).toEqual([]);
  });
});

describe("logForAvailability", () => {
  const minute = (value: number) => new Date(BASE + value * 60_000);

  test.prop([
    steps,
    fc.integer({ min: 0, max: 10 }),
    fc.integer({ min: -5, max: 65 }),
    fc.integer({ min: 1, max: 70 }),
    fc.integer({ min: -5, max: 140 }),
  ], { numRuns: 400 })(
    "gives computeAvailability over the whole log, for a log from the baseline or one retention cut (in the middle of an incident too)",
    async (drawn, cut, fromMinute, length, nowMinute) => {
      // Retention keeps a contiguous part of the log that may start anywhere, inside an incident too.
      const log = logOf(drawn).slice(Math.min(cut, drawn.length > 0 ? drawn.length - 1 : 0));
      const window = { from: minute(fromMinute), to: minute(fromMinute + length), now: minute(nowMinute), successRate: null };
      const read = await logForAvailability(lister(log).list, "e", window.from);
      expect(computeAvailability({ ...read, ...window })).toEqual(computeAvailability({ transitions: log, ...window }));
      // A contiguous part of the log, up to its newest transition.
      const first = log.findIndex((transition) => transition.sequence === read.transitions[0]?.sequence);
      expect(read.transitions).toEqual(log.slice(first === -1 ? log.length : first));
    },
  );

  test.prop([steps, fc.integer({ min: 0, max: 10 }), fc.integer({ min: -5, max: 65 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 0, max: 12 })], {
    numRuns: 300,
  })(
    "bounded by a sequence (`upTo`), reads the log as it was when that was its newest: transitions committed since are left out of every read",
    async (drawn, cut, fromMinute, length, later) => {
      const log = logOf(drawn).slice(Math.min(cut, drawn.length > 0 ? drawn.length - 1 : 0));
      // The log as it was, and the same log after `later` more transitions (some late, some not).
      const split = Math.max(0, log.length - later);
      const then = log.slice(0, split);
      const upTo = then.at(-1)?.sequence ?? 0;
      const window = { from: minute(fromMinute), to: minute(fromMinute + length), now: minute(140), successRate: null };
      const bounded = await logForAvailability(lister(log).list, "e", window.from, upTo);
      const asItWas = await logForAvailability(lister(then).list, "e", window.from);
      expect(bounded).toEqual(asItWas);
      expect(await logSuffixSince(lister(log).list, "e", window.from, upTo)).toEqual(await logSuffixSince(lister(then).list, "e", window.from));
      expect(computeAvailability({ ...bounded, ...window })).toEqual(computeAvailability({ transitions: then, ...window }));
    },
  );

  test.prop(
    [steps, fc.integer({ min: -5, max: 65 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 8 })],
    { numRuns: 400 },
  )(
    "answers as the log before or the log after a retention cut that lands between its reads (it reads again when a row it used is gone)",
    async (drawn, fromMinute, length, cut, afterReads) => {
      const before = logOf(drawn);
      // Retention deletes a prefix of the log, never its newest transition.
      const after = before.slice(Math.min(cut, Math.max(0, before.length - 1)));
      let current = before;
      let reads = 0;
      const list = (query: TransitionQuery) => {
        reads += 1;
        const rows = lister(current).list(query);
        if (reads === afterReads) current = after;
        return rows;
      };
      const window = { from: minute(fromMinute), to: minute(fromMinute + length), now: minute(140), successRate: null };
      const upTo = before.at(-1)?.sequence ?? 0;
      const read = await logForAvailability(list, "e", window.from, upTo);
      const answer = computeAvailability({ ...read, ...window });
      expect([computeAvailability({ transitions: before, ...window }), computeAvailability({ transitions: after, ...window })]).toContainEqual(answer);
    },
  );

  it("reads again when retention deleted, between two reads, a transition the first one returned", async () => {
    // Sequence 1 at 0:10 (→ degraded), 2 late at 0:00 (→ healthy, in effect from 0:10), 3 at 0:20
    // (→ degraded); a prune up to 0:25 keeps only 3. Read [0:10, 0:30) with the prune after the
    // first read: both logs give half healthy, half degraded.
    const before = logOf([
      { gap: 1, minute: 10, to: 0 },
      { gap: 1, minute: 0, to: 0 },
      { gap: 1, minute: 20, to: 0 },
    ]);
    let current = before;
    let reads = 0;
    const list = (query: TransitionQuery) => {
      reads += 1;
      const rows = lister(current).list(query);
      if (reads === 1) current = before.slice(2);
      return rows;
    };
    const window = { from: minute(10), to: minute(30), now: minute(30), successRate: null };
    const read = await logForAvailability(list, "e", window.from, 3);
    expect(read.transitions.map((transition) => transition.sequence)).toEqual([3]);
    expect(computeAvailability({ ...read, ...window })).toMatchObject({ healthy: 0.5, degraded: 0.5 });
    expect(computeAvailability({ transitions: before, ...window })).toMatchObject({ healthy: 0.5, degraded: 0.5 });
  });

  it("gives up with an error when every attempt loses rows", async () => {
    let sequence = 10;
    const list = (query: TransitionQuery): Promise<HealthTransitionRecord[]> => {
      // A log whose rows are gone by the next read: each read sees one new transition only.
      sequence += 1;
      return lister(logOf([{ gap: sequence, minute: 30, to: 0 }])).list(query);
    };
    await expect(logForAvailability(list, "e", minute(10), 1000)).rejects.toThrow(/lost rows during each of 5 reads/u);
  });

  it("reads what happened since `from` and the incident open at `from`, not the history before it", async () => {
    // 1,000 transitions a minute apart, healthy ↔ degraded; then unhealthy at 1,000 and 1,001 → degraded
    // (the incident open at `from`), and the window from minute 1,002.
    const log = logOf([
      ...Array.from({ length: 1000 }, (_, index) => ({ gap: 1, minute: index, to: 0 })),
      { gap: 1, minute: 1000, to: 1 },
      { gap: 1, minute: 1001, to: 1 },
      { gap: 1, minute: 1003, to: 0 },
    ]);
    expect(log.slice(-3).map((transition) => [transition.previousStatus, transition.newStatus])).toEqual([
      ["healthy", "unhealthy"],
      ["unhealthy", "degraded"],
      ["degraded", "healthy"],
    ]);
    const source = lister(log);
    const read = await logForAvailability(source.list, "e", minute(1002));
    expect(read.transitions.map((transition) => transition.sequence)).toEqual([1001, 1002, 1003]);
    expect(source.rows()).toBeLessThan(30);
    const window = { from: minute(1002), to: minute(1010), now: minute(1010), successRate: null };
    const result = computeAvailability({ ...read, ...window });
    expect(result).toEqual(computeAvailability({ transitions: log, ...window }));
    // The incident open at 1,002 started at 1,000 and ended at 1,003: a 3-minute repair.
    expect(result?.mttrMs).toBe(3 * 60_000);
  });

  it("starts the incident open at `from` when it took effect, after a late transition's predecessor", async () => {
    // Sequence 1 at minute 50 (→ degraded), 2 back at minute 10 (→ healthy: takes effect at 50),
    // 3 at minute 20 (→ unhealthy: takes effect at 50 too, not at 20), 4 at minute 70 (→ healthy).
    const log = logOf([
      { gap: 1, minute: 50, to: 0 },
      { gap: 1, minute: 10, to: 0 },
      { gap: 1, minute: 20, to: 1 },
      { gap: 1, minute: 70, to: 0 },
    ]);
    expect(log.map((transition) => transition.newStatus)).toEqual(["degraded", "healthy", "unhealthy", "healthy"]);
    const window = { from: minute(60), to: minute(80), now: minute(80), successRate: null };
    const read = await logForAvailability(lister(log).list, "e", window.from);
    expect(read.transitions.map((transition) => transition.sequence)).toEqual([3, 4]);
    expect(read.notBefore).toEqual(minute(50));
    expect(computeAvailability({ ...read, ...window })?.mttrMs).toBe(20 * 60_000);
    expect(computeAvailability({ transitions: log, ...window })?.mttrMs).toBe(20 * 60_000);
  });
});
