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
export {
  EMPTY_SKETCH,
  MIN_INDEXABLE,
  SKETCH_RELATIVE_ACCURACY,
  addToSketch,
  mergeSketches,
  sketchCount,
  sketchKey,
  sketchQuantile,
  sketchValue,
  type LatencySketch,
} from "./sketch";
