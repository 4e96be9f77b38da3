import { fc, test } from "@fast-check/vitest";
import {
  HEALTH_STATUSES,
  HEALTH_TRIGGER_EVENTS,
  ValidationError,
  classifyHealthChange,
  classifyTransition,
  deriveHealthTriggerEvents,
  healthChangeToPayload,
  systemDegradedPayloadSchema,
  systemHealthChangedPayloadSchema,
  systemHealthyPayloadSchema,
  type HealthChange,
  type HealthEntityState,
  type HealthStatus,
  type HealthTriggerEvent,
} from "healthstate";
import { describe, expect, it } from "vitest";
import type { z } from "zod";

const H = "healthy";
const D = "degraded";
const U = "unhealthy";

function state(status: HealthStatus, healthyChecks = 1, totalChecks = 2): HealthEntityState {
  return { status, healthyChecks, totalChecks };
}

function change(id: string, prev: HealthStatus | null, next: HealthStatus | null): HealthChange {
  return {
    id,
    prev: prev === null ? null : state(prev, 2, 3),
    next: next === null ? null : state(next, 1, 3),
    occurredAt: "2026-11-30T12:00:00.000Z",
  };
}

const TRIGGER_SCHEMAS: Record<HealthTriggerEvent, z.ZodObject> = {
  [HEALTH_TRIGGER_EVENTS.degraded]: systemDegradedPayloadSchema,
  [HEALTH_TRIGGER_EVENTS.healthy]: systemHealthyPayloadSchema,
  [HEALTH_TRIGGER_EVENTS.healthChanged]: systemHealthChangedPayloadSchema,
};

describe("classifyTransition (§7)", () => {
  it.each([
    [H, H, "none"],
    [H, D, "escalation"],
    [H, U, "escalation"],
    [D, H, "recovery"],
    [D, D, "none"],
    [D, U, "escalation"],
    [U, H, "recovery"],
    [U, D, "deescalation"],
    [U, U, "none"],
  ] as const)("%s → %s is %s", (prev, next, expected) => {
    expect(classifyTransition(prev, next)).toBe(expected);
  });
});

describe("classifyHealthChange (§7)", () => {
  it.each([
    [H, H, false, false],
    [H, D, true, false],
    [H, U, true, false],
    [D, H, false, true],
    [D, D, false, false],
    [D, U, false, false],
    [U, H, false, true],
    [U, D, false, false],
    [U, U, false, false],
  ] as const)("%s → %s: degraded %s, recovered %s", (prev, next, degraded, recovered) => {
    expect(classifyHealthChange(change("sys::prod", prev, next))).toEqual({
      systemId: "sys",
      environmentId: "prod",
      previousStatus: prev,
      newStatus: next,
      degraded,
      recovered,
    });
  });

  it("creation and removal are neither degraded nor recovered", () => {
    expect(classifyHealthChange(change("sys", null, U))).toEqual({
      systemId: "sys",
      environmentId: null,
      previousStatus: null,
      newStatus: U,
      degraded: false,
      recovered: false,
    });
    expect(classifyHealthChange(change("sys", U, null))).toMatchObject({ previousStatus: U, newStatus: null, degraded: false, recovered: false });
    expect(classifyHealthChange(change("sys", H, null))).toMatchObject({ degraded: false, recovered: false });
    expect(classifyHealthChange(change("sys", null, H))).toMatchObject({ degraded: false, recovered: false });
    expect(classifyHealthChange(change("sys", null, null))).toMatchObject({ previousStatus: null, newStatus: null, degraded: false, recovered: false });
  });

  it("parses the entity id, escapes included", () => {
    expect(classifyHealthChange(change("sys-1", H, D))).toMatchObject({ systemId: "sys-1", environmentId: null });
    expect(classifyHealthChange(change("a%3Ab::x%25y", H, D))).toMatchObject({ systemId: "a:b", environmentId: "x%y" });
  });

  it("throws a ValidationError for a malformed id", () => {
    expect(() => classifyHealthChange(change("a:b", H, D))).toThrow(ValidationError);
    expect(() => classifyHealthChange(change("a::b::c", H, D))).toThrow(/a::b::c/);
  });
});

describe("deriveHealthTriggerEvents (§7)", () => {
  it("has the reference trigger ids", () => {
    expect(HEALTH_TRIGGER_EVENTS).toEqual({
      degraded: "healthcheck.system_degraded",
      healthy: "healthcheck.system_healthy",
      healthChanged: "healthcheck.system_health_changed",
    });
    expect(Object.isFrozen(HEALTH_TRIGGER_EVENTS)).toBe(true);
  });

  const degraded = HEALTH_TRIGGER_EVENTS.degraded;
  const healthy = HEALTH_TRIGGER_EVENTS.healthy;
  const changed = HEALTH_TRIGGER_EVENTS.healthChanged;

  it.each([
    [H, H, []],
    [H, D, [degraded, changed]],
    [H, U, [degraded, changed]],
    [D, H, [healthy, changed]],
    [D, D, []],
    [D, U, [changed]],
    [U, H, [healthy, changed]],
    [U, D, [changed]],
    [U, U, []],
    [null, H, []],
    [null, U, []],
    [H, null, []],
    [U, null, []],
    [null, null, []],
  ] as const)("%s → %s fires %j", (prev, next, expected) => {
    expect(deriveHealthTriggerEvents(change("sys", prev, next))).toEqual(expected);
  });

  it("ignores counts: a count-only change fires nothing", () => {
    expect(deriveHealthTriggerEvents({ prev: state(D, 1, 3), next: state(D, 0, 3) })).toEqual([]);
  });
});

describe("healthChangeToPayload (§7)", () => {
  it("omits the environmentId key for a rollup change", () => {
    const payload = healthChangeToPayload(change("sys-1", H, U));
    expect("environmentId" in payload).toBe(false);
    expect(payload).toEqual({
      systemId: "sys-1",
      previousStatus: H,
      newStatus: U,
      healthyChecks: 1,
      totalChecks: 3,
      timestamp: "2026-11-30T12:00:00.000Z",
    });
    expect(JSON.parse(JSON.stringify(payload))).toEqual(payload);
  });

  it("carries the environmentId of an environment change", () => {
    const payload = healthChangeToPayload(change("sys-1::prod", U, H));
    expect("environmentId" in payload).toBe(true);
    expect(payload).toEqual({
      systemId: "sys-1",
      environmentId: "prod",
      previousStatus: U,
      newStatus: H,
      healthyChecks: 1,
      totalChecks: 3,
      timestamp: "2026-11-30T12:00:00.000Z",
    });
  });

  it("decodes escaped ids", () => {
    expect(healthChangeToPayload(change("a%25::b%3Ac", H, D))).toMatchObject({ systemId: "a%", environmentId: "b:c" });
  });

  it("omits statuses that are absent and takes counts from next (0 when removed)", () => {
    const created = healthChangeToPayload(change("sys", null, D));
    expect("previousStatus" in created).toBe(false);
    expect(created).toMatchObject({ newStatus: D, healthyChecks: 1, totalChecks: 3 });
    const removed = healthChangeToPayload(change("sys", D, null));
    expect("newStatus" in removed).toBe(false);
    expect(removed).toMatchObject({ previousStatus: D, healthyChecks: 0, totalChecks: 0 });
  });

  it("throws a ValidationError for a malformed id", () => {
    expect(() => healthChangeToPayload(change("::prod", H, D))).toThrow(ValidationError);
  });
});

describe("trigger payload schemas (§7)", () => {
  const base = {
    systemId: "sys",
    previousStatus: H,
    newStatus: D,
    healthyChecks: 1,
    totalChecks: 2,
    timestamp: "2026-11-30T12:00:00.000Z",
  };

  it("strip unknown keys instead of rejecting them", () => {
    for (const schema of [systemDegradedPayloadSchema, systemHealthChangedPayloadSchema]) {
      const parsed = schema.parse({ ...base, extra: 1, classification: "escalation" });
      expect(parsed).toEqual(base);
      expect("extra" in parsed).toBe(false);
    }
  });

  it("the healthy schema has no newStatus: it is stripped", () => {
    const parsed = systemHealthyPayloadSchema.parse({ ...base, newStatus: H, extra: true });
    expect("newStatus" in parsed).toBe(false);
    expect(parsed).toEqual({ systemId: "sys", previousStatus: H, healthyChecks: 1, totalChecks: 2, timestamp: base.timestamp });
  });

  it("accept optional environmentId and systemName", () => {
    for (const schema of Object.values(TRIGGER_SCHEMAS)) {
      const parsed = schema.parse({ ...base, environmentId: "prod", systemName: "Checkout" });
      expect(parsed).toMatchObject({ environmentId: "prod", systemName: "Checkout" });
      expect("environmentId" in schema.parse(base)).toBe(false);
    }
  });

  it("reject wrong types and missing required fields", () => {
    for (const schema of Object.values(TRIGGER_SCHEMAS)) {
      expect(schema.safeParse({ ...base, environmentId: null }).success).toBe(false);
      expect(schema.safeParse({ ...base, previousStatus: "ok" }).success).toBe(false);
      expect(schema.safeParse({ ...base, healthyChecks: "1" }).success).toBe(false);
      const { systemId: _systemId, ...withoutSystem } = base;
      expect(schema.safeParse(withoutSystem).success).toBe(false);
      const { timestamp: _timestamp, ...withoutTimestamp } = base;
      expect(schema.safeParse(withoutTimestamp).success).toBe(false);
    }
    expect(systemDegradedPayloadSchema.safeParse({ ...base, newStatus: undefined }).success).toBe(false);
    expect(systemHealthChangedPayloadSchema.safeParse({ ...base, newStatus: "bad" }).success).toBe(false);
  });

  const statusArb = fc.constantFrom<HealthStatus>(...HEALTH_STATUSES);
  test.prop([
    statusArb,
    statusArb,
    fc.option(fc.constantFrom("prod", "a:b", "%"), { nil: null }),
    fc.nat({ max: 20 }),
    fc.nat({ max: 20 }),
  ])("every trigger's payload parses with its schema", (prev, next, environmentId, healthyChecks, extra) => {
    const id = environmentId === null ? "s%3A1" : `s%3A1::${environmentId.replaceAll("%", "%25").replaceAll(":", "%3A")}`;
    const current: HealthChange = {
      id,
      prev: state(prev, healthyChecks, healthyChecks + extra),
      next: state(next, healthyChecks, healthyChecks + extra),
      occurredAt: "2026-01-01T00:00:00.000Z",
    };
    const payload = healthChangeToPayload(current);
    expect(payload.systemId).toBe("s:1");
    expect("environmentId" in payload).toBe(environmentId !== null);
    const triggers = deriveHealthTriggerEvents(current);
    expect(triggers.length === 0).toBe(prev === next);
    for (const trigger of triggers) {
      const parsed = TRIGGER_SCHEMAS[trigger].safeParse(payload);
      expect(parsed.success).toBe(true);
      const { newStatus: _newStatus, ...withoutNew } = payload;
      expect(parsed.data).toEqual(trigger === HEALTH_TRIGGER_EVENTS.healthy ? withoutNew : payload);
    }
  });
});
