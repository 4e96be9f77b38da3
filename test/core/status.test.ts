import { fc, test } from "@fast-check/vitest";
import { HEALTH_STATUSES, compareSeverity, isHealthStatus, severityOf, worstStatus, type HealthStatus } from "healthstate";
import { describe, expect, it } from "vitest";

const status = fc.constantFrom<HealthStatus>(...HEALTH_STATUSES);
const statuses = fc.array(status, { maxLength: 30 });

describe("statuses (§2)", () => {
  it("orders severity healthy < degraded < unhealthy", () => {
    expect(severityOf("healthy")).toBeLessThan(severityOf("degraded"));
    expect(severityOf("degraded")).toBeLessThan(severityOf("unhealthy"));
    expect(HEALTH_STATUSES).toEqual(["healthy", "degraded", "unhealthy"]);
  });

  it("worstStatus([]) is healthy", () => {
    expect(worstStatus([])).toBe("healthy");
  });

  it("worstStatus picks the most severe status", () => {
    expect(worstStatus(["healthy"])).toBe("healthy");
    expect(worstStatus(["healthy", "degraded", "healthy"])).toBe("degraded");
    expect(worstStatus(["degraded", "unhealthy", "healthy"])).toBe("unhealthy");
    expect(worstStatus(["unhealthy", "degraded"])).toBe("unhealthy");
  });

  it("worstStatus accepts any iterable", () => {
    expect(worstStatus(new Set<HealthStatus>(["healthy", "degraded"]))).toBe("degraded");
    function* generate(): Generator<HealthStatus> {
      yield "healthy";
      yield "unhealthy";
    }
    expect(worstStatus(generate())).toBe("unhealthy");
  });

  test.prop([statuses, fc.infiniteStream(fc.nat())])("worstStatus does not depend on order", (list, keys) => {
    const randomKeys = list.map(() => keys.next().value as number);
    const shuffled = list
      .map((value, index) => ({ value, key: randomKeys[index] as number }))
      .sort((a, b) => a.key - b.key)
      .map(({ value }) => value);
    expect(worstStatus(shuffled)).toBe(worstStatus(list));
    expect(worstStatus([...list].reverse())).toBe(worstStatus(list));
  });

  test.prop([statuses, status])("adding a status never lowers the worst (and the worst is the maximum)", (list, extra) => {
    const before = worstStatus(list);
    const after = worstStatus([...list, extra]);
    expect(severityOf(after)).toBeGreaterThanOrEqual(severityOf(before));
    expect(severityOf(after)).toBe(Math.max(severityOf(before), severityOf(extra)));
  });

  test.prop([statuses])("worstStatus is one of the inputs (or healthy when empty) and no input is more severe", (list) => {
    const worst = worstStatus(list);
    if (list.length > 0) expect(list).toContain(worst);
    for (const value of list) expect(compareSeverity(value, worst)).toBeLessThanOrEqual(0);
  });

  it("compareSeverity sorts by severity, not alphabetically", () => {
    const sorted = (["unhealthy", "healthy", "degraded", "healthy", "unhealthy"] as HealthStatus[]).sort(compareSeverity);
    expect(sorted).toEqual(["healthy", "healthy", "degraded", "unhealthy", "unhealthy"]);
    // Alphabetical order would put degraded first.
    expect((["healthy", "degraded"] as HealthStatus[]).sort(compareSeverity)).toEqual(["healthy", "degraded"]);
  });

  it("compareSeverity is negative, zero or positive", () => {
    expect(compareSeverity("healthy", "unhealthy")).toBeLessThan(0);
    expect(compareSeverity("degraded", "healthy")).toBeGreaterThan(0);
    expect(compareSeverity("degraded", "degraded")).toBe(0);
  });

  test.prop([status, status, status])("compareSeverity is a consistent comparator", (a, b, c) => {
    expect(Math.sign(compareSeverity(a, b)) + Math.sign(compareSeverity(b, a))).toBe(0);
    expect(compareSeverity(a, b) === 0).toBe(a === b);
    if (compareSeverity(a, b) <= 0 && compareSeverity(b, c) <= 0) expect(compareSeverity(a, c)).toBeLessThanOrEqual(0);
  });

  test.prop([statuses])("sorting with compareSeverity ends on worstStatus", (list) => {
    const sorted = [...list].sort(compareSeverity);
    expect(sorted.at(-1) ?? "healthy").toBe(worstStatus(list));
    for (let index = 1; index < sorted.length; index += 1) {
      expect(severityOf(sorted[index - 1] as HealthStatus)).toBeLessThanOrEqual(severityOf(sorted[index] as HealthStatus));
    }
  });

  it("isHealthStatus accepts exactly the three statuses", () => {
    for (const value of HEALTH_STATUSES) expect(isHealthStatus(value)).toBe(true);
    for (const value of ["Healthy", "ok", "", null, undefined, 0, {}]) expect(isHealthStatus(value)).toBe(false);
  });
});
