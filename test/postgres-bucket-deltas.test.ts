import { describe, expect, it } from "vitest";
import { BucketDeltaCounter, MAX_FOLD_SYSTEMS } from "../adapters/postgres/context";

const rows = (entries: readonly (readonly [string, number])[]) => new Map(entries);

describe("BucketDeltaCounter (when a transaction looks at a system's pending bucket deltas)", () => {
  it("looks on the first append of a system it has no count of, then once the count reaches foldAfter, and restarts the count", () => {
    const counter = new BucketDeltaCounter(5);
    expect(counter.append(rows([["a", 2]]))).toEqual(["a"]);
    expect(counter.append(rows([["a", 2]]))).toEqual([]);
    expect(counter.append(rows([["a", 2]]))).toEqual([]);
    expect(counter.append(rows([["a", 1]]))).toEqual(["a"]);
    expect(counter.append(rows([["a", 4]]))).toEqual([]);
  });

  it("starts from the pending count read with the state version: no look of its own", () => {
    const counter = new BucketDeltaCounter(5);
    counter.seed(["a", "b"], rows([["a", 3]]));
    expect(counter.knows("a") && counter.knows("b") && !counter.knows("c")).toBe(true);
    expect(counter.append(rows([["a", 1], ["b", 1]]))).toEqual([]);
    expect(counter.append(rows([["a", 1], ["b", 1]]))).toEqual(["a"]);
    counter.folded(["b"]);
    expect(counter.append(rows([["b", 4]]))).toEqual([]);
  });

  it(`looks at ${MAX_FOLD_SYSTEMS} systems at most per transaction, unknown ones first, then the most pending; the others stay due`, () => {
    const counter = new BucketDeltaCounter(3);
    const systems = Array.from({ length: 50 }, (_, index) => `s${String(index).padStart(2, "0")}`);
    counter.seed(systems.slice(0, 40), rows(systems.slice(0, 40).map((systemId, index) => [systemId, index % 5])));
    // 40 known (counts 0..4, +1 each) and 10 unknown: the unknown, then the 22 with most pending.
    const first = counter.append(rows(systems.map((systemId) => [systemId, 1])));
    expect(first).toHaveLength(MAX_FOLD_SYSTEMS);
    expect(first.slice(0, 10).sort()).toEqual(systems.slice(40));
    const pendingOf = (systemId: string) => (systems.indexOf(systemId) % 5) + 1;
    expect(first.slice(10).map(pendingOf)).toEqual([...Array<number>(8).fill(5), ...Array<number>(8).fill(4), ...Array<number>(6).fill(3)]);
    // Due but not chosen: chosen at their next append, before anything newly due.
    const left = systems.slice(0, 40).filter((systemId) => pendingOf(systemId) >= 3 && !first.includes(systemId));
    expect(left).toHaveLength(2);
    expect(counter.append(rows(systems.map((systemId) => [systemId, 0])))).toEqual(expect.arrayContaining(left));
  });
});
