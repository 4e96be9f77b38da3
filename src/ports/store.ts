import type { AssignmentRecord, SystemRecord } from "../aggregate";
import type { HealthEvent } from "../events";
import type { BucketGranularity, BucketKey, RunBucket } from "../buckets";
import type { EntityRecord, HealthTransitionRecord, MaintenanceRecord, SliceKey, SliceRecord, StoredRun } from "../kernel";

/**
 * What an adapter can guarantee. The engine and the conformance kit adapt to it; nothing is
 * skipped silently.
 */
export interface AdapterCapabilities {
  /** Committed data survives a process crash. */
  readonly durable: boolean;
  /** Several processes may share the adapter's data, with every guarantee of SPEC §8 intact. */
  readonly crossProcess: boolean;
}

/** A query over an entity's transition log. Times are `Date`s, already validated. */
export interface TransitionQuery {
  readonly entityId: string;
  /** Inclusive lower bound on `occurredAt`. */
  readonly from?: Date;
  /** Exclusive upper bound on `occurredAt`. */
  readonly to?: Date;
  /** Keep only the `limit` highest sequences. */
  readonly limit?: number;
}

/**
 * One unit of work. Every write becomes visible to others only when the transaction commits,
 * all together; reads see the committed state plus this transaction's own writes. Methods taking
 * lists accept empty lists (and then do nothing). Ids are opaque strings, stored verbatim.
 *
 * The engine may call a method before an earlier one has resolved, but only for reads issued
 * together, or writes to unrelated tables with nothing read in between (`insertRuns` with
 * `addToBuckets`). Each call must then have the outcome it would have had if the calls had been
 * awaited one by one, in call order. Once `fn` has settled, calls on the transaction must reject
 * and write nothing.
 */
export interface StoreTransaction {
  /** The systems among `systemIds` that exist; absent ones are left out. */
  getSystems(systemIds: readonly string[]): Promise<SystemRecord[]>;
  /** Every system id, in no particular order. */
  listSystemIds(): Promise<string[]>;
  /**
   * Optional (a cache contract; adapters without it are read in full every time). The version of
   * each given system's state (its system record, assignments, slices and entities; not its
   * maintenance windows): an opaque token, the `stateVersion` of the last committed transaction
   * that wrote any of those rows of the system. Systems with no version yet are left out. An
   * engine keeps the state of the systems it wrote and, while the version it read under the
   * system's lock is still the one its own commit set, uses that state instead of reading the rows.
   */
  getStateVersions?(systemIds: readonly string[]): Promise<{ readonly systemId: string; readonly version: string }[]>;
  /**
   * With `getStateVersions`: this transaction's token, unique to it (a retried attempt gets a new
   * one). At commit, every system whose system record, assignments, slices or entities it wrote
   * (`putSystem`, `deleteSystem`, `putAssignments`, `deleteAssignments`, `putSlices`,
   * `deleteSlices`, `putEntities`) gets it as its version, atomically with those writes.
   */
  readonly stateVersion?: string;
  /** Creates or replaces a system (its membership). */
  putSystem(system: SystemRecord): Promise<void>;
  /** Deletes a system record; a no-op when absent. Assignments and slices are deleted separately. */
  deleteSystem(systemId: string): Promise<void>;
  /** Every assignment of the given systems. */
  getAssignments(systemIds: readonly string[]): Promise<AssignmentRecord[]>;
  /** Creates or replaces an assignment, keyed by (systemId, checkId). */
  putAssignments(assignments: readonly AssignmentRecord[]): Promise<void>;
  /** Deletes assignments; absent ones are ignored. */
  deleteAssignments(keys: readonly { readonly systemId: string; readonly checkId: string }[]): Promise<void>;
  /** Every slice of the given systems. */
  getSlices(systemIds: readonly string[]): Promise<SliceRecord[]>;
  /** Creates or replaces slices, keyed by (systemId, checkId, environmentId or null). */
  putSlices(slices: readonly SliceRecord[]): Promise<void>;
  /** Deletes slices; absent ones are ignored. */
  deleteSlices(keys: readonly SliceKey[]): Promise<void>;
  /** Every entity record of the given systems, tombstones (`state: null`) included. */
  getEntities(systemIds: readonly string[]): Promise<EntityRecord[]>;
  /** Creates or replaces entity records, keyed by entityId. */
  putEntities(entities: readonly EntityRecord[]): Promise<void>;
  /** The subset of `runIds` already accepted. */
  findRunIds(runIds: readonly string[]): Promise<string[]>;
  /**
   * Appends accepted runs; their run ids are new (the engine checked with `findRunIds`). A run id
   * already stored, or repeated within the call, must still make the transaction fail: the
   * store's own constraint is what keeps G6 if locking were ever wrong.
   */
  insertRuns(runs: readonly StoredRun[]): Promise<void>;
  /** Appends entries to the transition log. (entityId, sequence) is unique: a repeat makes the transaction fail. */
  appendTransitions(transitions: readonly HealthTransitionRecord[]): Promise<void>;
  /** Appends events to the outbox, for delivery after commit. (entityId, sequence) and `eventId` are unique: a repeat makes the transaction fail. */
  enqueueEvents(events: readonly HealthEvent[]): Promise<void>;
  /** As `HealthStore.listTransitions`, inside this transaction (sees its own appends). */
  listTransitions(query: TransitionQuery): Promise<HealthTransitionRecord[]>;
  /** Every maintenance window of the given systems, in no particular order. */
  getMaintenance(systemIds: readonly string[]): Promise<MaintenanceRecord[]>;
  /** Creates or replaces maintenance windows, keyed by maintenanceId. */
  putMaintenance(windows: readonly MaintenanceRecord[]): Promise<void>;
  /** Deletes maintenance windows; absent ids are ignored. */
  deleteMaintenance(maintenanceIds: readonly string[]): Promise<void>;
  /**
   * Adds each given bucket into the stored bucket with the same key (systemId, checkId,
   * environmentId, granularity, start as an instant), or stores it when there is none: counts and
   * sums add up, min and max combine, sketch bins add up (`mergeBuckets` of `healthstate` does
   * exactly this). The merge must be atomic per bucket, so two transactions adding to one bucket
   * both count, whatever their interleaving. Keys within one call are distinct.
   */
  addToBuckets(buckets: readonly RunBucket[]): Promise<void>;
  /** Deletes buckets; absent ones are ignored. */
  deleteBuckets(keys: readonly BucketKey[]): Promise<void>;
  /**
   * Up to `limit` buckets of `granularity` of the given systems whose start is before `before`,
   * oldest first. Retention reads what it rolls up with it.
   */
  listBucketsBefore(query: {
    readonly systemIds: readonly string[];
    readonly granularity: BucketGranularity;
    readonly before: Date;
    readonly limit: number;
  }): Promise<RunBucket[]>;
}

/** A query over the buckets of one system's slices. */
export interface BucketQuery {
  readonly systemId: string;
  /** Only the slices of this environment; `undefined` for every slice of the system. */
  readonly environmentId?: string;
  readonly granularity: BucketGranularity;
  /** Inclusive lower bound on the bucket's start. */
  readonly from: Date;
  /** Exclusive upper bound on the bucket's start. */
  readonly to: Date;
}

/**
 * Durable (or in-memory) storage of everything the engine knows: topology, slice and entity
 * state, runs, the transition log and the outbox. Promise-based, plain data; an adapter reports
 * failure by rejecting, and the engine turns that into a `StoreError`.
 */
export interface HealthStore {
  readonly capabilities: AdapterCapabilities;
  /**
   * Runs `fn` as one atomic unit of work: when `fn` resolves, every write commits together;
   * when it rejects (or the commit fails), nothing is kept, and the promise rejects with the
   * same reason.
   *
   * `lockKeys` (already sorted canonically, and already held in this process through the lock
   * port) are the entities the work touches: an adapter shared across processes must hold them
   * across processes for the duration of the transaction (for Postgres, transaction-scoped
   * advisory locks). An in-process adapter may ignore them.
   */
  transaction<T>(options: { readonly lockKeys: readonly string[] }, fn: (tx: StoreTransaction) => Promise<T>): Promise<T>;
  /** Committed entity records by id; unknown ids are left out. */
  getEntitiesById(entityIds: readonly string[]): Promise<EntityRecord[]>;
  /** An entity's transition log in sequence order, filtered by `occurredAt`. */
  listTransitions(query: TransitionQuery): Promise<HealthTransitionRecord[]>;
  /**
   * Committed maintenance windows, filtered by `maintenanceId` and/or `systemId` (both must match
   * when both are given; neither lists all); ordered by start as an instant, then by id.
   */
  listMaintenance(query: {
    readonly maintenanceId?: string;
    readonly systemId?: string;
  }): Promise<MaintenanceRecord[]>;
  /** Ids of the systems that have a window with a boundary due at `now` and not yet processed. */
  findDueMaintenance(now: Date): Promise<string[]>;
  /** Committed buckets matching the query, in no particular order. */
  queryBuckets(query: BucketQuery): Promise<RunBucket[]>;
  /** Ids of every system that has buckets of `granularity` starting before `before`. */
  listSystemsWithBucketsBefore(query: { readonly granularity: BucketGranularity; readonly before: Date }): Promise<string[]>;
  /**
   * Retention of raw data, each in its own transaction and idempotent: deletes runs whose
   * `timestamp` is before `runsBefore`, daily buckets starting before `dailyBefore`, each
   * entity's transitions that the log no longer needs from `transitionsBefore` on, and
   * maintenance windows whose `end` is before `transitionsBefore` and that have no boundary left
   * to process (`startedEntities !== null && ended`). Returns the counts.
   *
   * Walking an entity's log in sequence order, a transition takes effect at the latest
   * `occurredAt` so far, so every transition before the first one (by sequence) at or after
   * `transitionsBefore` took effect before it. Of those, the one with the latest `occurredAt`
   * (the last one on a tie) stays, with every transition after it; the ones before it are
   * deleted. So the log still
   * gives the status at the horizon and everything since (availability, maintenance statuses),
   * every kept transition keeps the time it took effect (`inStatusSince`), a late transition (an
   * `occurredAt` earlier than one before it) is never cut out of the middle of the chain, and
   * each entity's newest transition always stays. Nothing is deleted of a log whose first
   * transition occurred at or after the horizon.
   *
   * A pruned run's `runId` is accepted again: idempotent ingestion (G6) holds within the raw
   * retention. A transaction still running may commit a record already past a horizon; the next
   * prune removes it.
   */
  prune(options: {
    readonly runsBefore: Date;
    readonly dailyBefore: Date;
    readonly transitionsBefore: Date;
  }): Promise<{ readonly runs: number; readonly daily: number; readonly transitions: number; readonly maintenance: number }>;
}
