import { DDSketch } from "@datadog/sketches-js";

/**
 * Relative accuracy of latency quantiles: a reported p95 is within 1% of a value whose rank is
 * the exact p95's, however many sketches were merged (DDSketch merges bins exactly).
 */
export const SKETCH_RELATIVE_ACCURACY = 0.01;

/** A latency quantile sketch in its stored form: DDSketch's protobuf encoding, base64. */
export type EncodedSketch = string;

export function newSketch(): DDSketch {
  return new DDSketch({ relativeAccuracy: SKETCH_RELATIVE_ACCURACY });
}

export function encodeSketch(sketch: DDSketch): EncodedSketch {
  return Buffer.from(sketch.toProto()).toString("base64");
}

export function decodeSketch(encoded: EncodedSketch): DDSketch {
  return DDSketch.fromProto(Buffer.from(encoded, "base64"));
}

/** Merges encoded sketches into a new one; `undefined` when there are none. */
export function mergeSketches(encoded: Iterable<EncodedSketch>): DDSketch | undefined {
  let merged: DDSketch | undefined;
  for (const item of encoded) {
    const sketch = decodeSketch(item);
    if (merged === undefined) merged = sketch;
    else merged.merge(sketch);
  }
  return merged;
}
