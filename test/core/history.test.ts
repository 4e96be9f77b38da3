import { fc, test } from "@fast-check/vitest";
import { computeAvailability, type Availability, type HealthStatus, type TimedTransition } from "healthstate";
import { describe, expect, it } from "vitest";

const H = "healthy";
const D = "degraded";
const U = "unhealthy";

const HOUR = 3_600_000;
const MINUTE = 60_000;
const DAY_START = Date.parse("2026-11-30T00:00:00.000Z");

/** ISO time `ms` after midnight of the test day. */
function t(ms: number): string {
  return new Date(DAY_START + ms).toISOString();
}

function d(ms: number): Date {
  return new Date(DAY_START + ms);
}

/** A chain of transitions through `steps` ([time, newStatus]), from the healthy baseline. */
function chain(...steps: [number, HealthStatus][]): TimedTransition[] {
  let previous: HealthStatus = H;
  return steps.map(([at, newStatus]) => {
    const transition = { previousStatus: previous, newStatus, occurredAt: t(at) };
    previous = newStatus;
    return transition;
  });
}

/** Availability over [from, to) seen at `now` (default: long after the window). */
function availability(transitions: readonly TimedTransition[], from: number, to: number, now = to + 7 * 24 * HOUR, successRate: number | null = null): Availability {
  const result = computeAvailability({ transitions, from: d(from), to: d(to), now: d(now), successRate });
  expect(result).toBeDefined();
  return result as Availability;
}

function expectShares(result: Availability, healthy: number, degraded: number, unhealthy: number): void {
  expect(result.healthy).toBeCloseTo(healthy, 12);
  expect(result.degraded).toBeCloseTo(degraded, 12);
  expect(result.unhealthy).toBeCloseTo(unhealthy, 12);
  expect(result.availability).toBe(result.healthy);
}

describe("computeAvailability (§9)", () => {
  it("a 3-hour outage in a 24-hour window is 0.875", () => {
    const result = availability(chain([6 * HOUR, U], [9 * HOUR, H]), 0, 24 * HOUR);
    expect(result).toEqual({
      availability: 0.875,
      healthy: 0.875,
      degraded: 0,
      unhealthy: 0.125,
      incidents: 1,
      mttrMs: 3 * HOUR,
      mtbfMs: null,
      successRate: null,
    });
  });

  it.each([1, 5, 15, 60])("… whatever the check interval (%i min): time-weighted, not run-counted", (interval) => {
    // Runs every `interval` minutes, failing from 06:00 to 09:00; the entity follows the runs.
    const runs: [number, HealthStatus][] = [];
    for (let at = 0; at < 24 * HOUR; at += interval * MINUTE) runs.push([at, at >= 6 * HOUR && at < 9 * HOUR ? U : H]);
    const steps: [number, HealthStatus][] = [];
    let current: HealthStatus = H;
    for (const [at, status] of runs) {
      if (status !== current) steps.push([at, status]);
      current = status;
    }
    const healthyRuns = runs.filter(([, status]) => status === H).length;
    const result = availability(chain(...steps), 0, 24 * HOUR, 24 * HOUR, healthyRuns / runs.length);
    expect(result.availability).toBe(0.875);
    expect(result.successRate).toBe(healthyRuns / runs.length);
    expect(result.incidents).toBe(1);
  });

  it("changes between non-healthy statuses stay one outage; degraded is unavailable but reported on its own", () => {
    const result = availability(chain([6 * HOUR, D], [7 * HOUR, U], [8 * HOUR, D], [9 * HOUR, H]), 0, 24 * HOUR);
    expectShares(result, 21 / 24, 2 / 24, 1 / 24);
    expect(result.availability).toBeCloseTo(0.875, 12);
    expect(result.incidents).toBe(1);
    expect(result.mttrMs).toBe(3 * HOUR);
  });

  it("no transitions: healthy all along, no incident", () => {
    expect(availability([], 0, HOUR)).toEqual({
      availability: 1,
      healthy: 1,
      degraded: 0,
      unhealthy: 0,
      incidents: 0,
      mttrMs: null,
      mtbfMs: null,
      successRate: null,
    });
  });

  it("passes the run-based success rate through", () => {
    expect(availability([], 0, HOUR, HOUR, 0.5).successRate).toBe(0.5);
    expect(availability([], 0, HOUR, HOUR, null).successRate).toBeNull();
  });

  it("the status at `from` is that of the last transition before it", () => {
    const log = chain([-5 * HOUR, U], [-2 * HOUR, D]);
    const result = availability(log, 0, 10 * HOUR);
    expectShares(result, 0, 1, 0);
    // Entered before the window: not an incident of the window.
    expect(result.incidents).toBe(0);
    expect(result.mttrMs).toBeNull();
    // A transition at exactly `from` is in effect at `from`, and inside the window.
    const atFrom = availability(chain([0, U]), 0, 10 * HOUR);
    expectShares(atFrom, 0, 0, 1);
    expect(atFrom.incidents).toBe(1);
  });

  it("clips the window at now, and ignores transitions at or after its end", () => {
    const log = chain([6 * HOUR, U], [9 * HOUR, H], [13 * HOUR, D]);
    const result = availability(log, 0, 24 * HOUR, 12 * HOUR);
    expectShares(result, 9 / 12, 0, 3 / 12);
    expect(result.incidents).toBe(1);
    // A transition at exactly the end of the window does not count.
    const atEnd = availability(chain([12 * HOUR, U]), 0, 12 * HOUR);
    expectShares(atEnd, 1, 0, 0);
    expect(atEnd.incidents).toBe(0);
    // An incident still open at the end has no repair time yet.
    const open = availability(chain([6 * HOUR, U]), 0, 12 * HOUR);
    expectShares(open, 0.5, 0, 0.5);
    expect(open.incidents).toBe(1);
    expect(open.mttrMs).toBeNull();
  });

  it("is undefined for an empty window (in the future, or inverted)", () => {
    const input = { transitions: [], successRate: null };
    expect(computeAvailability({ ...input, from: d(HOUR), to: d(2 * HOUR), now: d(HOUR) })).toBeUndefined();
    expect(computeAvailability({ ...input, from: d(HOUR), to: d(2 * HOUR), now: d(0) })).toBeUndefined();
    expect(computeAvailability({ ...input, from: d(HOUR), to: d(HOUR), now: d(3 * HOUR) })).toBeUndefined();
    expect(computeAvailability({ ...input, from: d(2 * HOUR), to: d(HOUR), now: d(3 * HOUR) })).toBeUndefined();
    expect(computeAvailability({ ...input, from: d(HOUR), to: d(2 * HOUR), now: d(HOUR + 1) })).toBeDefined();
  });

  it("counts entries into non-healthy inside the window; mttr over incidents that ended inside it", () => {
    const log = chain(
      [-3 * HOUR, U], // started before the window …
      [1 * HOUR, H], // … ended inside: a 4 h repair, not an incident of the window
      [2 * HOUR, D],
      [3 * HOUR, U],
      [4 * HOUR, H], // 2 h
      [10 * HOUR, U],
      [11 * HOUR, H], // 1 h
      [20 * HOUR, D], // still open at the end
    );
    const result = availability(log, 0, 24 * HOUR);
    expect(result.incidents).toBe(3);
    expect(result.mttrMs).toBe((4 * HOUR + 2 * HOUR + 1 * HOUR) / 3);
    expectShares(result, (24 - 1 - 2 - 1 - 4) / 24, 5 / 24, (1 + 1 + 1) / 24);
  });

  it("mtbf is the mean healthy time between incidents of the window, null with fewer than two", () => {
    const one = availability(chain([-HOUR, U], [HOUR, H], [5 * HOUR, U], [6 * HOUR, H]), 0, 24 * HOUR);
    expect(one.incidents).toBe(1);
    expect(one.mtbfMs).toBeNull();

    // Recovered before the window: the healthy time before the first incident is not between two.
    const log = chain([-2 * HOUR, U], [-HOUR, H], [HOUR, D], [2 * HOUR, H], [4 * HOUR, U], [5 * HOUR, H], [8 * HOUR, U], [9 * HOUR, H]);
    const result = availability(log, 0, 24 * HOUR);
    expect(result.incidents).toBe(3);
    expect(result.mtbfMs).toBe((2 * HOUR + 3 * HOUR) / 2);

    const two = availability(chain([HOUR, U], [2 * HOUR, H], [12 * HOUR, D]), 0, 24 * HOUR);
    expect(two.incidents).toBe(2);
    expect(two.mtbfMs).toBe(10 * HOUR);
  });

  it("clamps a transition earlier than its predecessor to its predecessor's time", () => {
    // Runs arrived out of timestamp order: the recovery carries an earlier time than the outage.
    const log: TimedTransition[] = [
      { previousStatus: H, newStatus: U, occurredAt: t(10 * HOUR) },
      { previousStatus: U, newStatus: H, occurredAt: t(9 * HOUR) },
      { previousStatus: H, newStatus: D, occurredAt: t(12 * HOUR) },
    ];
    const result = availability(log, 0, 24 * HOUR);
    expectShares(result, 12 / 24, 12 / 24, 0);
    expect(result.incidents).toBe(2);
    expect(result.mttrMs).toBe(0);
    expect(result.mtbfMs).toBe(2 * HOUR);
    // Clamped into the window: an outage from 23:00 "recovered" at 22:00 takes no time.
    const late = availability(
      [
        { previousStatus: H, newStatus: U, occurredAt: t(23 * HOUR) },
        { previousStatus: U, newStatus: H, occurredAt: t(22 * HOUR) },
      ],
      0,
      24 * HOUR,
    );
    expectShares(late, 1, 0, 0);
  });

  // Times on a whole-minute grid, so a minute-by-minute walk is an exact reference.
  const step = fc.tuple(fc.integer({ min: -60, max: 300 }), fc.constantFrom<HealthStatus>(H, D, U));
  test.prop([
    fc.array(step, { maxLength: 30 }),
    fc.integer({ min: -30, max: 250 }),
    fc.integer({ min: 1, max: 200 }),
    fc.integer({ min: -30, max: 400 }),
  ])("shares are in [0, 1], sum to 1 and equal a minute-by-minute walk of the log", (steps, fromMinute, length, nowMinute) => {
    // A chain through random statuses (repeats dropped), with random and possibly unordered times.
    const log: TimedTransition[] = [];
    let previous: HealthStatus = H;
    for (const [minute, status] of steps) {
      if (status === previous) continue;
      log.push({ previousStatus: previous, newStatus: status, occurredAt: t(minute * MINUTE) });
      previous = status;
    }
    const from = fromMinute * MINUTE;
    const to = (fromMinute + length) * MINUTE;
    const now = nowMinute * MINUTE;
    const result = computeAvailability({ transitions: log, from: d(from), to: d(to), now: d(now), successRate: null });
    const end = Math.min(to, now);
    if (end <= from) {
      expect(result).toBeUndefined();
      return;
    }
    expect(result).toBeDefined();
    const value = result as Availability;
    for (const share of [value.healthy, value.degraded, value.unhealthy, value.availability]) {
      expect(share).toBeGreaterThanOrEqual(0);
      expect(share).toBeLessThanOrEqual(1);
    }
    expect(value.healthy + value.degraded + value.unhealthy).toBeCloseTo(1, 12);
    expect(value.availability).toBe(value.healthy);

    // Reference: effective times (never backwards), then the status of every minute of the window.
    let cursor = Number.NEGATIVE_INFINITY;
    const effective = log.map((transition) => {
      cursor = Math.max(cursor, Date.parse(transition.occurredAt) - DAY_START);
      return { ...transition, at: cursor };
    });
    const minutes: Record<HealthStatus, number> = { healthy: 0, degraded: 0, unhealthy: 0 };
    for (let minute = from; minute < end; minute += MINUTE) {
      const status = effective.filter((transition) => transition.at <= minute).at(-1)?.newStatus ?? H;
      minutes[status] += 1;
    }
    const total = (end - from) / MINUTE;
    expect(value.healthy).toBeCloseTo(minutes.healthy / total, 12);
    expect(value.degraded).toBeCloseTo(minutes.degraded / total, 12);
    expect(value.unhealthy).toBeCloseTo(minutes.unhealthy / total, 12);
    const incidents = effective.filter((transition) => transition.previousStatus === H && transition.at >= from && transition.at < end);
    expect(value.incidents).toBe(incidents.length);
    if (value.incidents < 2) expect(value.mtbfMs).toBeNull();
    else expect(value.mtbfMs).toBeGreaterThanOrEqual(0);
    if (value.mttrMs !== null) expect(value.mttrMs).toBeGreaterThanOrEqual(0);
  });
});
