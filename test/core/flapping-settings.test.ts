import { fc, test } from "@fast-check/vitest";
import {
  DEFAULT_FLAPPING,
  flappingOverrideIssues,
  resolveAssignmentFlapping,
  resolveEntityFlapping,
  topologyFlappingIssues,
  type FlappingConfig,
  type FlappingOverride,
} from "healthstate";
import { describe, expect, it } from "vitest";
import { isEmptyFlappingOverride } from "../../src/flapping";

const GLOBAL: FlappingConfig = DEFAULT_FLAPPING;
const OFF: FlappingConfig = { enabled: false, low: 20, high: 30 };
const contributor = (flapping?: FlappingOverride | null) => (flapping === undefined ? {} : { flapping });

/** Valid engine settings: 0 ≤ low < high ≤ 100. */
const globalArb: fc.Arbitrary<FlappingConfig> = fc
  .tuple(fc.boolean(), fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 100 }))
  .filter(([, a, b]) => a !== b)
  .map(([enabled, a, b]) => ({ enabled, low: Math.min(a, b), high: Math.max(a, b) }));

/** Any override within range, valid or not once merged. */
const overrideArb: fc.Arbitrary<FlappingOverride | null | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.record({ enabled: fc.boolean(), low: fc.integer({ min: 0, max: 100 }), high: fc.integer({ min: 0, max: 100 }) }, { requiredKeys: [] }),
);

describe("isEmptyFlappingOverride", () => {
  it("is true for absent, null and {} only", () => {
    expect([undefined, null, {}, { enabled: undefined }].map(isEmptyFlappingOverride)).toEqual([true, true, true, true]);
    expect([{ enabled: false }, { low: 0 }, { high: 50 }].map(isEmptyFlappingOverride)).toEqual([false, false, false]);
  });
});

describe("flappingOverrideIssues (§10, merged with the engine's settings)", () => {
  it("accepts no override and overrides that resolve to low < high", () => {
    expect(flappingOverrideIssues(GLOBAL, undefined)).toEqual([]);
    expect(flappingOverrideIssues(GLOBAL, null)).toEqual([]);
    expect(flappingOverrideIssues(GLOBAL, { low: 29 })).toEqual([]);
    expect(flappingOverrideIssues(GLOBAL, { high: 21, enabled: false })).toEqual([]);
    expect(flappingOverrideIssues(GLOBAL, { low: 40, high: 50 })).toEqual([]);
  });

  it("blames the field the override sets, naming the inherited bound", () => {
    expect(flappingOverrideIssues(GLOBAL, { low: 40 })).toEqual([{ path: ["low"], message: "must be less than high (30, the engine's flapping.high)" }]);
    expect(flappingOverrideIssues(GLOBAL, { high: 20 })).toEqual([{ path: ["high"], message: "must be greater than low (20, the engine's flapping.low)" }]);
    expect(flappingOverrideIssues(GLOBAL, { low: 50, high: 50 })).toEqual([{ path: ["low"], message: "must be less than high (50)" }]);
    // Disabling does not excuse inconsistent thresholds, as for the engine's own settings.
    expect(flappingOverrideIssues(GLOBAL, { enabled: false, low: 30 })).toHaveLength(1);
  });

  it("topologyFlappingIssues reports every check with its path from the document root", () => {
    const doc = {
      systems: [
        { checks: [{}, { flapping: { low: 35 } }] },
        { checks: [{ flapping: null }, { flapping: { high: 10 } }] },
      ],
    };
    expect(topologyFlappingIssues(GLOBAL, doc).map((issue) => issue.path)).toEqual([
      ["systems", 0, "checks", 1, "flapping", "low"],
      ["systems", 1, "checks", 1, "flapping", "high"],
    ]);
    expect(topologyFlappingIssues(GLOBAL, { systems: [] })).toEqual([]);
  });
});

describe("resolveAssignmentFlapping", () => {
  it("merges the given fields over the engine's settings", () => {
    expect(resolveAssignmentFlapping(GLOBAL, undefined)).toBe(GLOBAL);
    expect(resolveAssignmentFlapping(GLOBAL, null)).toBe(GLOBAL);
    expect(resolveAssignmentFlapping(GLOBAL, {})).toEqual(GLOBAL);
    expect(resolveAssignmentFlapping(GLOBAL, { high: 25 })).toEqual({ enabled: true, low: 20, high: 25 });
    expect(resolveAssignmentFlapping(OFF, { enabled: true, low: 5 })).toEqual({ enabled: true, low: 5, high: 30 });
  });

  it("an override that does not resolve to low < high (written under other engine settings) keeps enabled, takes the engine's thresholds", () => {
    expect(resolveAssignmentFlapping({ enabled: true, low: 10, high: 15 }, { enabled: false, low: 20 })).toEqual({ enabled: false, low: 10, high: 15 });
  });

  test.prop([globalArb, overrideArb])("always resolves to low < high", (global, override) => {
    const resolved = resolveAssignmentFlapping(global, override);
    expect(resolved.low).toBeLessThan(resolved.high);
  });
});

describe("resolveEntityFlapping (§10: any enabled contributor, most sensitive thresholds)", () => {
  it("no contributor: the engine's settings", () => {
    expect(resolveEntityFlapping(GLOBAL, [])).toBe(GLOBAL);
    expect(resolveEntityFlapping(OFF, [])).toBe(OFF);
  });

  it("contributors without overrides: exactly the engine's settings", () => {
    expect(resolveEntityFlapping(GLOBAL, [contributor(), contributor(null)])).toEqual(GLOBAL);
    expect(resolveEntityFlapping(OFF, [contributor(), contributor(null)])).toEqual(OFF);
  });

  it("a lower high on one contributor lowers the entity's high; the lowest low wins too", () => {
    expect(resolveEntityFlapping(GLOBAL, [contributor(), contributor({ high: 25 })])).toEqual({ enabled: true, low: 20, high: 25 });
    expect(resolveEntityFlapping(GLOBAL, [contributor({ low: 5, high: 90 }), contributor({ low: 10, high: 15 })])).toEqual({ enabled: true, low: 5, high: 15 });
  });

  it("one enabled contributor is enough; disabled ones do not bring their thresholds", () => {
    expect(resolveEntityFlapping(GLOBAL, [contributor({ enabled: false, high: 21 }), contributor()])).toEqual(GLOBAL);
    expect(resolveEntityFlapping(OFF, [contributor(), contributor({ enabled: true, high: 40 })])).toEqual({ enabled: true, low: 20, high: 40 });
  });

  it("disabled when every contributor is disabled", () => {
    expect(resolveEntityFlapping(GLOBAL, [contributor({ enabled: false }), contributor({ enabled: false, low: 1 })])).toEqual(OFF);
    expect(resolveEntityFlapping(OFF, [contributor(), contributor({ low: 3 })])).toEqual(OFF);
  });

  test.prop([globalArb, fc.array(overrideArb, { maxLength: 5 })])(
    "low < high; enabled iff some contributor resolves enabled; the thresholds are the minima over the enabled ones; order does not matter",
    (global, overrides) => {
      const contributors = overrides.map((flapping) => contributor(flapping));
      const resolved = resolveEntityFlapping(global, contributors);
      expect(resolved.low).toBeLessThan(resolved.high);
      const each = overrides.map((override) => resolveAssignmentFlapping(global, override));
      const enabled = each.filter((settings) => settings.enabled);
      expect(resolved.enabled).toBe(overrides.length === 0 ? global.enabled : enabled.length > 0);
      if (enabled.length > 0) {
        expect(resolved.high).toBe(Math.min(...enabled.map((settings) => settings.high)));
        expect(resolved.low).toBe(Math.min(...enabled.map((settings) => settings.low)));
      }
      expect(resolveEntityFlapping(global, [...contributors].reverse())).toEqual(resolved);
    },
  );
});
