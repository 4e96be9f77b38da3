import { fc, test } from "@fast-check/vitest";
import { describe, expect, it } from "vitest";
import { muteFlapping, replay, type HealthEvent, type HealthStatus, type TopologyDoc } from "healthstate";

const TOPOLOGY: TopologyDoc = {
  systems: [
    {
      systemId: "s",
      environmentIds: [],
      checks: [{ checkId: "c", thresholds: { mode: "consecutive", healthy: { minSuccessCount: 1 }, degraded: { minFailureCount: 1 }, unhealthy: { minFailureCount: 2 } } }],
    },
  ],
};

function eventsFor(statuses: readonly HealthStatus[]): HealthEvent[] {
  return replay({
    topology: TOPOLOGY,
    runs: statuses.map((status, index) => ({ systemId: "s", checkId: "c", status, timestamp: new Date(Date.UTC(2026, 10, 30, 0, index)) })),
  }).transitions;
}

/** What a muted pager "said" last: the status of each notification it received. */
function notifiedStatuses(events: readonly HealthEvent[]): HealthStatus[] {
  const said: HealthStatus[] = [];
  const pager = muteFlapping((event: HealthEvent) => {
    if (event.type === "health.transition") said.push(event.newStatus);
    if (event.type === "health.flapping_stopped") said.push(event.statusAfter);
  });
  for (const event of events) pager(event);
  return said;
}

describe("muteFlapping", () => {
  it("drops flapping transitions and a flap that ends where it started, passes the rest", () => {
    const calls: string[] = [];
    const muted = muteFlapping((event: HealthEvent) => {
      calls.push(event.type);
      return "handled";
    });
    const base = { eventId: "e", entityId: "s", systemId: "s", environmentId: null, occurredAt: "2026-11-30T00:00:00.000Z" };
    const transition = {
      ...base,
      type: "health.transition" as const,
      sequence: 1,
      previousStatus: "healthy" as const,
      newStatus: "degraded" as const,
      healthyChecks: 0,
      totalChecks: 1,
      classification: "escalation" as const,
      triggers: [],
      cause: {},
    };
    expect(muted(transition)).toBe("handled");
    expect(muted({ ...transition, flapping: true })).toBeUndefined();
    expect(muted({ ...base, type: "health.flapping_started", sequence: 2, percentStateChange: 31, status: "degraded" })).toBe("handled");
    const stopped = { ...base, type: "health.flapping_stopped" as const, sequence: 3, percentStateChange: 10 };
    expect(muted({ ...stopped, statusBefore: "degraded", statusAfter: "degraded" })).toBeUndefined();
    expect(muted({ ...stopped, statusBefore: "degraded", statusAfter: "unhealthy" })).toBe("handled");
    expect(calls).toEqual(["health.transition", "health.flapping_started", "health.flapping_stopped"]);
  });

  test.prop([fc.array(fc.constantFrom<HealthStatus>("healthy", "degraded", "unhealthy"), { minLength: 1, maxLength: 80 })])(
    "never swallows a final status: what the pager heard last is the entity's status once calm",
    (statuses) => {
      // 25 equal results calm any flap down, so the flap (if any) has ended.
      const last = statuses[statuses.length - 1] as HealthStatus;
      const events = eventsFor([...statuses, ...Array.from({ length: 25 }, () => last)]);
      const said = notifiedStatuses(events);
      expect(said.at(-1) ?? "healthy").toBe(finalStatus(events));
      // And it never says the same thing twice in a row.
      said.forEach((value, index) => expect(value).not.toBe(index === 0 ? "healthy" : said[index - 1]));
    },
  );
});

function finalStatus(events: readonly HealthEvent[]): HealthStatus {
  let status: HealthStatus = "healthy";
  for (const event of events) if (event.type === "health.transition") status = event.newStatus;
  return status;
}
