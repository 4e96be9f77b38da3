export { aggregateRunEntities, aggregateSystem, effectiveSlices, sameEntityState, type EntityView, type HealthEntityState, type SliceStatusLookup } from "./aggregate";
export { isCounted, type AssignmentRecord, type SystemRecord } from "./topology";
