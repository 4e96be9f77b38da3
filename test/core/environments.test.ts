import { fc, test } from "@fast-check/vitest";
import { resolveEffectiveEnvironments } from "healthstate";
import { describe, expect, it } from "vitest";

const membership = ["prod", "staging", "dev"] as const;

describe("resolveEffectiveEnvironments (§4)", () => {
  it("null or omitted selector gives the whole membership, in membership order", () => {
    expect(resolveEffectiveEnvironments({ environmentIds: null, membership })).toEqual(["prod", "staging", "dev"]);
    expect(resolveEffectiveEnvironments({ environmentIds: undefined, membership })).toEqual(["prod", "staging", "dev"]);
    expect(resolveEffectiveEnvironments({ membership })).toEqual(["prod", "staging", "dev"]);
  });

  it("returns a fresh array, not the membership itself", () => {
    const list = ["prod"];
    const result = resolveEffectiveEnvironments({ membership: list });
    result.push("other");
    expect(list).toEqual(["prod"]);
  });

  it("[] selects none (the check runs env-less)", () => {
    expect(resolveEffectiveEnvironments({ environmentIds: [], membership })).toEqual([]);
  });

  it("a list keeps membership order, not selector order", () => {
    expect(resolveEffectiveEnvironments({ environmentIds: ["dev", "prod"], membership })).toEqual(["prod", "dev"]);
    expect(resolveEffectiveEnvironments({ environmentIds: ["staging"], membership })).toEqual(["staging"]);
  });

  it("drops selected ids that are no longer in the membership", () => {
    expect(resolveEffectiveEnvironments({ environmentIds: ["gone", "dev", "old"], membership })).toEqual(["dev"]);
    expect(resolveEffectiveEnvironments({ environmentIds: ["gone"], membership })).toEqual([]);
  });

  it("an empty membership gives none, whatever the selector", () => {
    expect(resolveEffectiveEnvironments({ environmentIds: null, membership: [] })).toEqual([]);
    expect(resolveEffectiveEnvironments({ membership: [] })).toEqual([]);
    expect(resolveEffectiveEnvironments({ environmentIds: ["prod"], membership: [] })).toEqual([]);
  });

  const envId = fc.constantFrom("a", "b", "c", "d", "e", "f");
  test.prop([fc.uniqueArray(envId), fc.array(envId)])(
    "a list selector gives the membership filtered to the list, in membership order",
    (members, selector) => {
      const result = resolveEffectiveEnvironments({ environmentIds: selector, membership: members });
      expect(result).toEqual(members.filter((id) => selector.includes(id)));
      const reversed = resolveEffectiveEnvironments({ environmentIds: [...selector].reverse(), membership: members });
      expect(reversed).toEqual(result);
    },
  );
});
