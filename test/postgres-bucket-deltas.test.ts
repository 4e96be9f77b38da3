import { describe, expect, it } from "vitest";
import { BucketDeltaCounter, type BucketDeltaStage } from "../adapters/postgres/context";

const rows = (entries: readonly (readonly [string, number])[]) => new Map(entries);

describe("BucketDeltaCounter (when a transaction looks at a system's pending bucket deltas)", () => {
  it("looks on the first append of a system it has no count of, then once the count reaches foldAfter, and restarts the count", () => {
    const counter = new BucketDeltaCounter(5);
    const appended = (entries: readonly (readonly [string, number])[]) => {
      const stage: BucketDeltaStage = new Map();
      const due = counter.append(rows(entries), stage);
      counter.commit(stage);
      return due;
    };
    expect(appended([["a", 2]])).toEqual(["a"]);
    expect(appended([["a", 2]])).toEqual([]);
    expect(appended([["a", 2]])).toEqual([]);
    expect(appended([["a", 1]])).toEqual(["a"]);
    expect(appended([["a", 4]])).toEqual([]);
  });

  it("starts from the pending count read with the state version: no look of its own", () => {
    const counter = new BucketDeltaCounter(5);
    counter.seed(["a", "b"], rows([["a", 3]]));
    const stage: BucketDeltaStage = new Map();
    expect(counter.knows("a", stage) && counter.knows("b", stage) && !counter.knows("c", stage)).toBe(true);
    expect(counter.append(rows([["a", 1], ["b", 1]]), stage)).toEqual([]);
    expect(counter.append(rows([["a", 1], ["b", 1]]), stage)).toEqual(["a"]);
    counter.folded(["b"], stage);
    counter.commit(stage);
    const next: BucketDeltaStage = new Map();
    expect(counter.append(rows([["a", 4], ["b", 4]]), next)).toEqual([]);
    expect(counter.append(rows([["a", 1], ["b", 1]]), next)).toEqual(["a", "b"]);
  });

  it("counts a transaction's appends and looks only once it commits: a rolled-back attempt's retry looks again", () => {
    const counter = new BucketDeltaCounter(4);
    counter.seed(["a"], rows([["a", 2]]));
    // Attempt 1: its append makes a fold due (2 + 2), then it rolls back: its stage is dropped.
    expect(counter.append(rows([["a", 2]]), new Map())).toEqual(["a"]);
    // Attempt 2 starts from the committed count, so it is due again.
    const retry: BucketDeltaStage = new Map();
    expect(counter.append(rows([["a", 2]]), retry)).toEqual(["a"]);
    counter.commit(retry);
    expect(counter.append(rows([["a", 3]]), new Map())).toEqual([]);
    // A system first met in an attempt that rolled back is still unknown: looked at on the retry.
    expect(counter.append(rows([["b", 1]]), new Map())).toEqual(["b"]);
    expect(counter.knows("b", new Map())).toBe(false);
  });

  it("adds up the appends of transactions that ran at the same time (no lock on the system): a commit adds to the count, a look restarts it", () => {
    const counter = new BucketDeltaCounter(6);
    counter.seed(["a"], rows([["a", 1]]));
    // Three transactions start from the same committed count (1) and append 2 each: none is due alone.
    const stages = [0, 1, 2].map(() => new Map() as BucketDeltaStage);
    for (const stage of stages) expect(counter.append(rows([["a", 2]]), stage)).toEqual([]);
    for (const stage of stages) counter.commit(stage);
    // 1 + 3 × 2 = 7 pending as far as the adapter knows: the next append looks.
    expect(counter.append(rows([["a", 1]]), new Map())).toEqual(["a"]);
    // A look restarts the count from the rows appended after it; a concurrent commit without a look adds to that.
    const other = new BucketDeltaCounter(6);
    other.seed(["a"], rows([["a", 0]]));
    const looked: BucketDeltaStage = new Map();
    const plain: BucketDeltaStage = new Map();
    expect(other.append(rows([["a", 6]]), looked)).toEqual(["a"]);
    expect(other.append(rows([["a", 1]]), looked)).toEqual([]);
    expect(other.append(rows([["a", 2]]), plain)).toEqual([]);
    other.commit(looked);
    other.commit(plain);
    // 1 (after the look) + 2 = 3 pending: 3 more rows are due (set to 2 instead, 3 would not be).
    expect(other.append(rows([["a", 3]]), new Map())).toEqual(["a"]);
  });

  it("keeps the counts of the most recently counted systems only, up to its capacity: a forgotten one is unknown (read again with its state version)", () => {
    const counter = new BucketDeltaCounter(5, 3);
    counter.seed(["a", "b", "c"], rows([["a", 1], ["b", 1], ["c", 1]]));
    const stage: BucketDeltaStage = new Map();
    expect(counter.append(rows([["a", 1]]), stage)).toEqual([]);
    counter.commit(stage);
    counter.seed(["d"], rows([]));
    // "b" was the least recently counted ("a" was counted again by the commit).
    expect(["a", "b", "c", "d"].map((systemId) => counter.knows(systemId, new Map()))).toEqual([true, false, true, true]);
    expect(counter.append(rows([["b", 1]]), new Map())).toEqual(["b"]);
  });
});
