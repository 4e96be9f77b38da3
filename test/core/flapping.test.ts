import { fc, test } from "@fast-check/vitest";
import { FLAP_HISTORY_LENGTH, HEALTH_STATUSES, percentStateChange, type HealthStatus } from "healthstate";
import { describe, expect, it } from "vitest";
import { percentStateChangeOfLetters } from "../../src/flapping";

const H = "healthy";
const D = "degraded";
const U = "unhealthy";

function repeat(status: HealthStatus, times: number): HealthStatus[] {
  return Array.from({ length: times }, () => status);
}

function alternating(length: number, a: HealthStatus = H, b: HealthStatus = U): HealthStatus[] {
  return Array.from({ length }, (_, index) => (index % 2 === 0 ? a : b));
}

/** §10 written directly: pad to 21 with the first status, weight change k (0 = oldest) 0.75 + 0.5·k/19. */
function reference(statuses: readonly HealthStatus[]): number {
  if (statuses.length === 0) return 0;
  const newest = statuses.slice(-21);
  const padded = [...repeat(newest[0] as HealthStatus, 21 - newest.length), ...newest];
  let sum = 0;
  for (let k = 0; k < 20; k += 1) {
    if (padded[k] !== padded[k + 1]) sum += 0.75 + (0.5 * k) / 19;
  }
  return (sum * 100) / 20;
}

describe("percentStateChange (§10)", () => {
  it("looks at 21 statuses", () => {
    expect(FLAP_HISTORY_LENGTH).toBe(21);
  });

  it("is 0 for an empty or constant history", () => {
    expect(percentStateChange([])).toBe(0);
    expect(percentStateChange([U])).toBe(0);
    expect(percentStateChange(repeat(D, 5))).toBe(0);
    expect(percentStateChange(repeat(H, 21))).toBe(0);
    expect(percentStateChange(repeat(U, 100))).toBe(0);
  });

  it("is 100 for 21 alternating statuses", () => {
    expect(percentStateChange(alternating(21))).toBeCloseTo(100, 10);
    expect(percentStateChange(alternating(21, D, H))).toBeCloseTo(100, 10);
    expect(percentStateChange([H, D, U, H, D, U, H, D, U, H, D, U, H, D, U, H, D, U, H, D, U])).toBeCloseTo(100, 10);
  });

  it("weighs a single change at the newest position 1.25 → 6.25", () => {
    expect(percentStateChange([...repeat(H, 20), U])).toBeCloseTo(6.25, 10);
  });

  it("weighs a single change at the oldest position 0.75 → 3.75", () => {
    expect(percentStateChange([H, ...repeat(U, 20)])).toBeCloseTo(3.75, 10);
  });

  it("weighs changes linearly in between", () => {
    // Change k (0 = oldest) is between positions k and k + 1 of the 21.
    for (let k = 0; k < 20; k += 1) {
      const statuses = [...repeat(H, k + 1), ...repeat(D, 20 - k)];
      expect(percentStateChange(statuses)).toBeCloseTo(((0.75 + (0.5 * k) / 19) * 100) / 20, 10);
    }
  });

  it("counts only the newest 21 statuses", () => {
    expect(percentStateChange([...alternating(40), ...repeat(D, 21)])).toBe(0);
    // 22 statuses: the change between the two oldest falls out.
    expect(percentStateChange([H, ...repeat(U, 21)])).toBe(0);
    expect(percentStateChange([...alternating(50), ...alternating(21)])).toBeCloseTo(100, 10);
  });

  it("pads a short history with its first status", () => {
    // [H, U] padded is 20 × H then U: one change at the newest position.
    expect(percentStateChange([H, U])).toBeCloseTo(6.25, 10);
    // [U, H, H] padded is 19 × U, H, H: one change at position 18.
    expect(percentStateChange([U, H, H])).toBeCloseTo(((0.75 + (0.5 * 18) / 19) * 100) / 20, 10);
    // Padding adds no change even when the history is short and busy.
    expect(percentStateChange(alternating(5))).toBeCloseTo(reference(alternating(5)), 10);
    expect(percentStateChange(alternating(5))).toBeLessThan(percentStateChange(alternating(6)));
  });

  test.prop([fc.array(fc.constantFrom<HealthStatus>(...HEALTH_STATUSES), { maxLength: 60 })])(
    "equals the §10 formula and stays within [0, 100]",
    (statuses) => {
      const value = percentStateChange(statuses);
      expect(value).toBeCloseTo(reference(statuses), 9);
      expect(value).toBeGreaterThanOrEqual(0);
      expect(value).toBeLessThanOrEqual(100 + 1e-9);
      expect(percentStateChange(statuses.slice(-21))).toBe(value);
    },
  );

  it("is exact whenever the percentage is a whole number, for every pattern of changes (a flap at exactly its threshold is not missed)", () => {
    // Change p (0 = oldest) weighs (57 + 2p)/76, so the percentage is Σ(57 + 2p)·5/76: whole exactly
    // when 76 divides Σ(57 + 2p)·5. Summing the weights as floats made 4,825 of the 16,210 whole
    // percentages come out a hair off: 4,509 below, 316 above (88 of those at 30).
    let whole = 0;
    for (let mask = 0; mask < 1 << 20; mask += 1) {
      let units = 0;
      const statuses: HealthStatus[] = [H];
      for (let position = 0; position < 20; position += 1) {
        const changes = (mask >> position) & 1;
        if (changes === 1) units += 57 + 2 * position;
        const previous = statuses[position] as HealthStatus;
        statuses.push(changes === 1 ? (previous === H ? U : H) : previous);
      }
      if ((units * 5) % 76 !== 0) continue;
      whole += 1;
      if (percentStateChange(statuses) !== (units * 5) / 76) {
        expect(percentStateChange(statuses), statuses.map((status) => status[0]).join("")).toBe((units * 5) / 76);
      }
    }
    expect(whole, "whole percentages, 0 included").toBe(16_210);
    // The review's example: exactly 40 % (1,520 / 38), computed 39.99999999999999 before.
    expect(percentStateChangeOfLetters("hhhhhuuhuhuhhhuuuuuuh")).toBe(40);
  });

  test.prop([fc.array(fc.constantFrom<HealthStatus>(...HEALTH_STATUSES), { maxLength: 60 })])(
    "of a letter history (as entity records keep it) equals that of the statuses, exactly",
    (statuses) => {
      const letters = statuses.map((status) => status[0]).join("");
      expect(percentStateChangeOfLetters(letters)).toBe(percentStateChange(statuses));
    },
  );
});
