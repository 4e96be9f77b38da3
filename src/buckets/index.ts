export {
  addRuns,
  bucketStart,
  emptyBucket,
  mergeBuckets,
  successRate,
  summarizeLatency,
  type BucketGranularity,
  type BucketKey,
  type LatencySummary,
  type RunBucket,
} from "./bucket";
export { SKETCH_RELATIVE_ACCURACY, decodeSketch, encodeSketch, mergeSketches, type EncodedSketch } from "./sketch";
