import {
  hasDueBoundary,
  mergeBuckets,
  sparseBins,
  type AdapterCapabilities,
  type AssignmentRecord,
  type BucketGranularity,
  type BucketKey,
  type BucketQuery,
  type EntityRecord,
  type HealthEvent,
  type HealthStore,
  type HealthTransitionRecord,
  type MaintenanceRecord,
  type RunBucket,
  type SliceKey,
  type SliceRecord,
  type StoredRun,
  type StoreTransaction,
  type SystemRecord,
  type TransitionQuery,
} from "healthstate";
import { CowTable, type TableStage } from "./cow-table";
import { MEMORY_CAPABILITIES, copy, frozen, promised, shared, timeOf, type AdapterLifecycle } from "./lifecycle";
import type { MemoryOutbox } from "./memory-outbox";
import { TransitionLog, limitOf } from "./transition-log";

// Keys are length-prefixed concatenations (collision-free, cheaper than JSON.stringify on every
// write); `-` marks an env-less slice, where an environment id has a length prefix.
const assignmentKey = (key: { readonly systemId: string; readonly checkId: string }): string =>
  `${key.systemId.length}:${key.systemId}${key.checkId}`;
const sliceKey = (key: SliceKey): string =>
  `${key.systemId.length}:${key.systemId}${key.checkId.length}:${key.checkId}${key.environmentId === null ? "-" : `${key.environmentId.length}:${key.environmentId}`}`;
const transitionKey = (entityId: string, sequence: number): string => JSON.stringify([entityId, sequence]);
/** Buckets are keyed by their canonical start (see `canonicalTime`), so two spellings of one instant are one bucket. */
const bucketKey = (key: BucketKey): string => storedBucketKey({ ...key, start: canonicalTime(key.start, "bucket start") });
/** The key of a stored bucket, whose start is canonical already. */
const storedBucketKey = (key: BucketKey): string =>
  JSON.stringify([key.systemId, key.checkId, key.environmentId, key.granularity, key.start]);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Up to this many bins, a stored copy of a sketch keeps them sparse. */
const SPARSE_BINS = 8;

/** What `MemoryStore.prune` deleted. */
export interface PruneCounts {
  readonly runs: number;
  readonly daily: number;
  readonly transitions: number;
  readonly maintenance: number;
}

// The last time made canonical: a batch's buckets nearly all start at the same hour.
let lastTime = { value: "1970-01-01T00:00:00.000Z", canonical: "1970-01-01T00:00:00.000Z" };

/** The canonical ISO 8601 UTC form of a time string; a `TypeError` naming `name` when it is not a time. */
function canonicalTime(value: string, name: string): string {
  if (value === lastTime.value) return lastTime.canonical;
  const ms = typeof value === "string" ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) throw new TypeError(`memory adapter: ${name} must be an ISO 8601 time, got ${JSON.stringify(value)}`);
  lastTime = { value, canonical: new Date(ms).toISOString() };
  return lastTime.canonical;
}

/** Checks a bucket (granularity and start) and returns a copy with its start in canonical form. */
function keyOfBucket(bucket: RunBucket): BucketKey {
  return {
    systemId: bucket.systemId,
    checkId: bucket.checkId,
    environmentId: bucket.environmentId,
    granularity: bucket.granularity,
    start: bucket.start,
  };
}

/**
 * A private, mutable copy of a bucket (its fields, as the Postgres adapter keeps them) with its
 * start in canonical form (buckets are the one table whose rows a commit changes in place: see
 * `mergeInto`).
 */
function storableBucket(bucket: RunBucket): RunBucket {
  if (bucket.granularity !== "hour" && bucket.granularity !== "day") {
    throw new TypeError(`memory adapter: bucket granularity must be "hour" or "day", got ${JSON.stringify(bucket.granularity)}`);
  }
  // Field by field (a bucket is flat but for its sketch): the generic `copy` costs more, per run.
  const sketch = bucket.sketch;
  const keys = Object.keys(sketch.bins);
  // A run's delta has one bin: kept sparse (see `sparseBins`); a bigger sketch as a plain object.
  const bins: Record<string, number> = keys.length <= SPARSE_BINS ? sparseBins() : {};
  for (const key of keys) bins[key] = sketch.bins[key] as number;
  return {
    systemId: bucket.systemId,
    checkId: bucket.checkId,
    environmentId: bucket.environmentId,
    granularity: bucket.granularity,
    start: canonicalTime(bucket.start, "bucket start"),
    runs: bucket.runs,
    healthy: bucket.healthy,
    degraded: bucket.degraded,
    unhealthy: bucket.unhealthy,
    latencyCount: bucket.latencyCount,
    latencySum: bucket.latencySum,
    latencyMin: bucket.latencyMin,
    latencyMax: bucket.latencyMax,
    sketch: { zero: sketch.zero, bins },
  };
}

/**
 * Adds `delta` into `target` in place, as `mergeBuckets(key, [target, delta])` would into a new
 * bucket. `target` must be private to the store (made by `storableBucket`): every read hands out
 * copies, so no caller can see a bucket change.
 */
function mergeInto(target: RunBucket, delta: RunBucket): void {
  const bucket = target as Mutable<RunBucket>;
  bucket.runs += delta.runs;
  bucket.healthy += delta.healthy;
  bucket.degraded += delta.degraded;
  bucket.unhealthy += delta.unhealthy;
  bucket.latencyCount += delta.latencyCount;
  bucket.latencySum += delta.latencySum;
  if (delta.latencyMin !== null) bucket.latencyMin = bucket.latencyMin === null ? delta.latencyMin : Math.min(bucket.latencyMin, delta.latencyMin);
  if (delta.latencyMax !== null) bucket.latencyMax = bucket.latencyMax === null ? delta.latencyMax : Math.max(bucket.latencyMax, delta.latencyMax);
  const sketch = bucket.sketch as { zero: number; bins: Record<string, number> };
  sketch.zero += delta.sketch.zero;
  for (const key of Object.keys(delta.sketch.bins)) sketch.bins[key] = (sketch.bins[key] ?? 0) + (delta.sketch.bins[key] as number);
}

/** Checks a maintenance window's times (its `start` and `end` must parse) and returns it frozen (see `frozen`). */
function storableWindow(window: MaintenanceRecord): MaintenanceRecord {
  canonicalTime(window.start, "maintenance start");
  canonicalTime(window.end, "maintenance end");
  return frozen(window);
}

/** Whether a window has a boundary left to process (it may become due). Indexed, for `findDueMaintenance`. */
const hasOpenBoundary = (window: MaintenanceRecord): boolean => window.startedEntities === null || !window.ended;

/** Oldest start first, then by slice (system, check, environment with env-less first): a total, stable order. */
function compareBuckets(a: RunBucket, b: RunBucket): number {
  return (
    Date.parse(a.start) - Date.parse(b.start) ||
    compareStrings(a.systemId, b.systemId) ||
    compareStrings(a.checkId, b.checkId) ||
    compareStrings(a.environmentId ?? "", b.environmentId ?? "") ||
    (a.environmentId === null ? 0 : 1) - (b.environmentId === null ? 0 : 1)
  );
}

/** Earliest start first, then by maintenance id. */
function compareWindows(a: MaintenanceRecord, b: MaintenanceRecord): number {
  return Date.parse(a.start) - Date.parse(b.start) || compareStrings(a.maintenanceId, b.maintenanceId);
}

/** Code-unit order, independent of the host's locale. */
const compareStrings = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Everything `MemoryStore` needs besides its own tables. */
export interface MemoryStoreDeps {
  /** Shared with the emitter: once closed, every call rejects. */
  readonly lifecycle: AdapterLifecycle;
  /** The outbox committed events go to (shared with the emitter). */
  readonly outbox: MemoryOutbox;
  /** Called after a commit that enqueued events. */
  readonly onEventsCommitted: () => void;
  /** Stamps the commit time of enqueued events (their age for `prune`). */
  readonly clock: () => Date;
}

/** What the memory store keeps of an accepted run (see `Tables.runs`). */
interface AcceptedRun {
  readonly runId: string;
  /** The run's `timestamp`, as given (ISO 8601). */
  readonly timestamp: string;
}

/** The committed tables of one memory store. */
class Tables {
  readonly systems = new CowTable<SystemRecord>((system) => system.systemId);
  readonly assignments = new CowTable<AssignmentRecord>(assignmentKey, (assignment) => assignment.systemId);
  readonly slices = new CowTable<SliceRecord>(sliceKey, (slice) => slice.systemId);
  readonly entities = new CowTable<EntityRecord>((entity) => entity.entityId, (entity) => entity.systemId);
  /**
   * Accepted runs, as much of each as the store reads back: its id (`findRunIds`, G6) and its
   * timestamp (`prune`). Nothing reads a run's other fields, so they are not kept (the whole
   * frozen run cost about 120 bytes more heap per run, kept for 7 days).
   */
  readonly runs = new CowTable<AcceptedRun>((run) => run.runId);
  readonly transitions = new TransitionLog();
  readonly maintenance = new CowTable<MaintenanceRecord>(
    (window) => window.maintenanceId,
    (window) => window.systemId,
    hasOpenBoundary,
  );
  readonly buckets = new CowTable<RunBucket>(storedBucketKey, (bucket) => bucket.systemId);
  /** The state version of each system (`StoreTransaction.getStateVersions`): set at commit, never removed. */
  readonly stateVersions = new Map<string, string>();
}

/** State versions of this process: unique per transaction, across every memory store. */
let lastStateVersion = 0;

/**
 * The memory adapter's `HealthStore`. Records are deeply frozen when written (copying whatever
 * part of them is still mutable) and handed out as they are stored: a caller can never change
 * stored data through an argument or a result (changing a result throws in strict mode and is
 * ignored otherwise), and reads allocate nothing per row. Buckets, which commits merge into, are
 * kept as private copies and copied when read.
 *
 * Transactions are real: each stages its writes copy-on-write per table; its reads see the
 * committed data plus its own staged writes (a staged delete hides a row), while other
 * transactions see none of them until it commits. Isolation is read committed: a running
 * transaction sees what others commit meanwhile, as Postgres's default does. When `fn` resolves, constraints are checked
 * once more against what committed meanwhile, and every staged write is applied in one
 * synchronous step (no other code can observe half a commit); when `fn` rejects, the stage is
 * dropped and the same reason is rethrown. Transactions do not wait for each other: `lockKeys`
 * are ignored, since in one process the lock port already serializes work on an entity.
 *
 * Maintenance windows and run buckets are tables like the others (staged per transaction,
 * partitioned by system). Runs, transitions, old daily buckets and processed windows leave only
 * through `prune`, which applies outside any transaction, in one synchronous step.
 *
 * After `close()` every method rejects with a `ClosedError`, and so does the commit of a
 * transaction still running then (nothing of it is kept).
 */
export class MemoryStore implements HealthStore {
  /** `{ durable: false, crossProcess: false }`. */
  readonly capabilities: AdapterCapabilities = MEMORY_CAPABILITIES;
  readonly #tables = new Tables();
  readonly #deps: MemoryStoreDeps;

  /** Use `createMemoryAdapter()`. */
  constructor(deps: MemoryStoreDeps) {
    this.#deps = deps;
  }

  /**
   * Runs `fn` in a new transaction and commits its writes when `fn` resolves; rejects with
   * `fn`'s own reason when it rejects, or with an `Error` when a uniqueness constraint
   * ((entityId, sequence) of transitions and events, `eventId`, `runId`) was violated by a
   * transaction that committed first. Either way nothing is kept. The transaction object
   * rejects every call once the transaction has ended.
   */
  async transaction<T>(
    _options: { readonly lockKeys: readonly string[] },
    fn: (tx: MemoryTransaction) => Promise<T>,
  ): Promise<T> {
    this.#deps.lifecycle.assertOpen("store.transaction");
    const tx = new MemoryTransaction(this.#tables, this.#deps);
    let result: T;
    try {
      result = await fn(tx);
    } catch (reason) {
      tx.end("rolled back");
      throw reason;
    }
    try {
      tx.commit();
    } catch (reason) {
      tx.end("rolled back");
      throw reason;
    }
    tx.end("committed");
    return result;
  }

  /** Committed entity records, in the order of `entityIds` (duplicates once); unknown ids are left out. */
  getEntitiesById(entityIds: readonly string[]): Promise<EntityRecord[]> {
    return promised(() => {
      this.#deps.lifecycle.assertOpen("store.getEntitiesById");
      const found: EntityRecord[] = [];
      for (const entityId of new Set(entityIds)) {
        const entity = this.#tables.entities.get(entityId);
        if (entity !== undefined) found.push(shared(entity));
      }
      return found;
    });
  }

  /**
   * The committed transition log of one entity in sequence order, with `from ≤ occurredAt < to`,
   * reduced to the `limit` highest sequences (still ascending). Empty for an unknown entity.
   */
  listTransitions(query: TransitionQuery): Promise<HealthTransitionRecord[]> {
    return promised(() => {
      this.#deps.lifecycle.assertOpen("store.listTransitions");
      return this.#tables.transitions.list(query);
    });
  }

  /**
   * Committed maintenance windows, ordered by start (as an instant), then by maintenance id (code
   * unit order). `maintenanceId` and `systemId` each narrow the result when given; both together
   * must both match. No filter lists every window.
   */
  listMaintenance(query: { readonly maintenanceId?: string; readonly systemId?: string }): Promise<MaintenanceRecord[]> {
    return promised(() => {
      this.#deps.lifecycle.assertOpen("store.listMaintenance");
      const table = this.#tables.maintenance;
      let windows: MaintenanceRecord[];
      if (query.maintenanceId !== undefined) {
        const window = table.get(query.maintenanceId);
        windows = window === undefined ? [] : [window];
      } else if (query.systemId !== undefined) {
        windows = committedPartition(table, query.systemId);
      } else {
        windows = [...table.entries()].map(([, window]) => window);
      }
      if (query.systemId !== undefined) windows = windows.filter((window) => window.systemId === query.systemId);
      return windows.sort(compareWindows).map((window) => shared(window));
    });
  }

  /**
   * Ids of the systems (sorted, each once) having a committed window with a boundary due at `now`
   * and not yet processed (`hasDueBoundary`). Only windows with a boundary left to process are
   * looked at, through an index, so fully processed windows cost nothing however many there are.
   */
  findDueMaintenance(now: Date): Promise<string[]> {
    return promised(() => {
      this.#deps.lifecycle.assertOpen("store.findDueMaintenance");
      timeOf(now, "now");
      const table = this.#tables.maintenance;
      const systemIds = new Set<string>();
      for (const key of table.flaggedKeys()) {
        const window = table.get(key);
        if (window !== undefined && hasDueBoundary(window, now)) systemIds.add(window.systemId);
      }
      return [...systemIds].sort(compareStrings);
    });
  }

  /**
   * Committed buckets of one system with `granularity` and `from ≤ start < to`. Without
   * `environmentId`, every slice of the system (env-less ones included); with it, only the
   * slices of that environment. Ordered oldest first, then by slice (the port promises no order).
   */
  queryBuckets(query: BucketQuery): Promise<RunBucket[]> {
    return promised(() => {
      this.#deps.lifecycle.assertOpen("store.queryBuckets");
      const from = timeOf(query.from, "from");
      const to = timeOf(query.to, "to");
      return committedPartition(this.#tables.buckets, query.systemId)
        .filter((bucket) => {
          if (bucket.granularity !== query.granularity) return false;
          if (query.environmentId !== undefined && bucket.environmentId !== query.environmentId) return false;
          const start = Date.parse(bucket.start);
          return from <= start && start < to;
        })
        .sort(compareBuckets)
        .map((bucket) => copy(bucket));
    });
  }

  /** Ids (sorted, each once) of the systems with a committed bucket of `granularity` starting before `before`. */
  listSystemsWithBucketsBefore(query: { readonly granularity: BucketGranularity; readonly before: Date }): Promise<string[]> {
    return promised(() => {
      this.#deps.lifecycle.assertOpen("store.listSystemsWithBucketsBefore");
      const before = timeOf(query.before, "before");
      const table = this.#tables.buckets;
      const systemIds: string[] = [];
      for (const systemId of table.partitionNames()) {
        for (const bucket of table.partitionRows(systemId).values()) {
          if (bucket.granularity === query.granularity && Date.parse(bucket.start) < before) {
            systemIds.push(systemId);
            break;
          }
        }
      }
      return systemIds.sort(compareStrings);
    });
  }

  /**
   * Retention of raw data, in one synchronous step (so each part, and the whole, is atomic; no
   * transaction can observe half of it). Deletes:
   *
   * - runs whose `timestamp` is before `runsBefore` (a scan of the runs table: recording a run
   *   pays nothing for it). **A pruned run's id is free again**: a run carrying it is accepted
   *   as new, so idempotent ingestion (SPEC §8 G6) holds within the raw retention only;
   * - daily buckets whose start is before `dailyBefore` (hourly buckets are left to the rollup,
   *   which deletes them with `tx.deleteBuckets`);
   * - transitions whose `occurredAt` is before `transitionsBefore`, except each entity's newest
   *   (highest sequence), kept whatever its age;
   * - maintenance windows whose `end` is before `transitionsBefore` and whose boundaries were all
   *   processed (`startedEntities !== null && ended`). A window never processed is kept, so its
   *   events are still emitted however late the engine gets to it.
   *
   * Returns how many of each were deleted. Idempotent: calling it again with the same bounds
   * deletes nothing and returns zeros. Transactions still running are unaffected until they
   * commit; a transaction that re-puts a pruned maintenance window or bucket recreates it.
   */
  prune(options: { readonly runsBefore: Date; readonly dailyBefore: Date; readonly transitionsBefore: Date }): Promise<PruneCounts> {
    return promised(() => {
      this.#deps.lifecycle.assertOpen("store.prune");
      const runsBefore = timeOf(options.runsBefore, "runsBefore");
      const dailyBefore = timeOf(options.dailyBefore, "dailyBefore");
      const transitionsBefore = timeOf(options.transitionsBefore, "transitionsBefore");
      const tables = this.#tables;
      return {
        runs: deleteWhere(tables.runs, (run) => Date.parse(run.timestamp) < runsBefore),
        daily: deleteWhere(tables.buckets, (bucket) => bucket.granularity === "day" && Date.parse(bucket.start) < dailyBefore),
        transitions: tables.transitions.prune(transitionsBefore),
        maintenance: deleteWhere(
          tables.maintenance,
          (window) => !hasOpenBoundary(window) && Date.parse(window.end) < transitionsBefore,
        ),
      };
    });
  }
}

/** The committed rows of one partition of a table (not copied). */
function committedPartition<V>(table: CowTable<V>, partition: string): V[] {
  const rows: V[] = [];
  for (const row of table.partitionRows(partition).values()) rows.push(row);
  return rows;
}

/** Deletes the committed rows `doomed` accepts, in one synchronous step; returns how many. */
function deleteWhere<V>(table: CowTable<V>, doomed: (row: V) => boolean): number {
  const stage = table.stage();
  let deleted = 0;
  for (const [key, row] of table.entries()) {
    if (!doomed(row)) continue;
    stage.delete(key);
    deleted += 1;
  }
  stage.apply();
  return deleted;
}

/**
 * One transaction of `MemoryStore`. Each method works synchronously at call time (its promise
 * settles right after) and validates a whole batch before staging any of it, so a rejected
 * batch stages nothing.
 */
/** The memory store's unit of work: the port's methods, plus `getBuckets`/`putBuckets` for tests and tools. */
export class MemoryTransaction implements StoreTransaction {
  readonly #tables: Tables;
  readonly #deps: MemoryStoreDeps;
  #ended: "committed" | "rolled back" | undefined;
  readonly #systems: TableStage<SystemRecord>;
  readonly #assignments: TableStage<AssignmentRecord>;
  readonly #slices: TableStage<SliceRecord>;
  readonly #entities: TableStage<EntityRecord>;
  readonly #runs: TableStage<AcceptedRun>;
  readonly #maintenance: TableStage<MaintenanceRecord>;
  readonly #buckets: TableStage<RunBucket>;
  // What `addToBuckets` added, by bucket key: merged into the then-committed bucket at commit, so
  // two transactions adding to one bucket both count, whatever their interleaving.
  readonly #bucketDeltas = new Map<string, RunBucket>();
  readonly #transitions: HealthTransitionRecord[] = [];
  // The same staged transitions by entity, for `listTransitions`.
  readonly #transitionsByEntity = new Map<string, HealthTransitionRecord[]>();
  readonly #transitionKeys = new Set<string>();
  readonly #events: HealthEvent[] = [];
  /** Systems whose state (system record, assignments, slices, entities) this transaction wrote. */
  readonly #stateWritten = new Set<string>();
  /** This transaction's state version: the version of every system in `#stateWritten` once it commits. */
  readonly stateVersion = `m${(lastStateVersion += 1).toString(36)}`;

  constructor(tables: Tables, deps: MemoryStoreDeps) {
    this.#tables = tables;
    this.#deps = deps;
    this.#systems = tables.systems.stage();
    this.#assignments = tables.assignments.stage();
    this.#slices = tables.slices.stage();
    this.#entities = tables.entities.stage();
    this.#runs = tables.runs.stage();
    this.#maintenance = tables.maintenance.stage();
    this.#buckets = tables.buckets.stage();
  }

  /** Ends the transaction: from now on every method rejects. Commit is synchronous, so nothing can slip in between. */
  end(outcome: "committed" | "rolled back"): void {
    this.#ended ??= outcome;
  }

  /**
   * Checks constraints against what committed since the writes were staged, then applies every
   * table in one synchronous step and wakes the emitter. Throws (keeping nothing) on a violation
   * or a closed adapter.
   */
  commit(): void {
    this.#deps.lifecycle.assertOpen("store.transaction (commit)");
    for (const run of this.#runs.writtenKeys()) {
      if (this.#tables.runs.get(run) !== undefined) {
        throw new Error(`memory store: commit failed: run ${JSON.stringify(run)} was inserted by another transaction`);
      }
    }
    for (const transition of this.#transitions) {
      if (this.#tables.transitions.has(transition.entityId, transition.sequence)) {
        throw new Error(
          `memory store: commit failed: transition (entityId ${JSON.stringify(transition.entityId)}, sequence ${transition.sequence}) was appended by another transaction`,
        );
      }
    }
    const conflict = this.#deps.outbox.conflict(this.#events);
    if (conflict !== undefined) throw new Error(`memory store: commit failed: ${conflict}`);
    const enqueuedAt = this.#events.length > 0 ? timeOf(this.#deps.clock(), "clock()") : 0;

    // From here on nothing can throw: the commit is all or nothing.
    for (const [key, delta] of this.#bucketDeltas) {
      const current = this.#buckets.get(key);
      if (current === undefined) this.#buckets.put(delta);
      else mergeInto(current, delta);
    }
    this.#systems.apply();
    this.#assignments.apply();
    this.#slices.apply();
    this.#entities.apply();
    this.#runs.apply();
    this.#maintenance.apply();
    this.#buckets.apply();
    for (const systemId of this.#stateWritten) this.#tables.stateVersions.set(systemId, this.stateVersion);
    this.#tables.transitions.insert(this.#transitions);
    this.#deps.outbox.append(this.#events, enqueuedAt);
    if (this.#events.length > 0) this.#deps.onEventsCommitted();
  }

  getSystems(systemIds: readonly string[]): Promise<SystemRecord[]> {
    return this.#run("getSystems", () => {
      const found: SystemRecord[] = [];
      for (const systemId of new Set(systemIds)) {
        const system = this.#systems.get(systemId);
        if (system !== undefined) found.push(shared(system));
      }
      return found;
    });
  }

  listSystemIds(): Promise<string[]> {
    return this.#run("listSystemIds", () => this.#systems.keys());
  }

  putSystem(system: SystemRecord): Promise<void> {
    return this.#run("putSystem", () => {
      this.#systems.put(frozen(system));
      this.#stateWritten.add(system.systemId);
    });
  }

  deleteSystem(systemId: string): Promise<void> {
    return this.#run("deleteSystem", () => {
      this.#systems.delete(systemId);
      this.#stateWritten.add(systemId);
    });
  }

  getAssignments(systemIds: readonly string[]): Promise<AssignmentRecord[]> {
    return this.#run("getAssignments", () => this.#byPartition(this.#assignments, systemIds));
  }

  putAssignments(assignments: readonly AssignmentRecord[]): Promise<void> {
    return this.#run("putAssignments", () => {
      for (const assignment of assignments.map(frozen)) {
        this.#assignments.put(assignment);
        this.#stateWritten.add(assignment.systemId);
      }
    });
  }

  deleteAssignments(keys: readonly { readonly systemId: string; readonly checkId: string }[]): Promise<void> {
    return this.#run("deleteAssignments", () => {
      for (const key of keys) {
        this.#assignments.delete(assignmentKey(key));
        this.#stateWritten.add(key.systemId);
      }
    });
  }

  getSlices(systemIds: readonly string[]): Promise<SliceRecord[]> {
    return this.#run("getSlices", () => this.#byPartition(this.#slices, systemIds));
  }

  putSlices(slices: readonly SliceRecord[]): Promise<void> {
    return this.#run("putSlices", () => {
      for (const slice of slices.map(frozen)) {
        this.#slices.put(slice);
        this.#stateWritten.add(slice.systemId);
      }
    });
  }

  deleteSlices(keys: readonly SliceKey[]): Promise<void> {
    return this.#run("deleteSlices", () => {
      for (const key of keys) {
        this.#slices.delete(sliceKey(key));
        this.#stateWritten.add(key.systemId);
      }
    });
  }

  getEntities(systemIds: readonly string[]): Promise<EntityRecord[]> {
    return this.#run("getEntities", () => this.#byPartition(this.#entities, systemIds));
  }

  putEntities(entities: readonly EntityRecord[]): Promise<void> {
    return this.#run("putEntities", () => {
      for (const entity of entities.map(frozen)) {
        this.#entities.put(entity);
        this.#stateWritten.add(entity.systemId);
      }
    });
  }

  /**
   * The committed state version of each given system that has one. A version changes only at the
   * commit of a transaction that wrote the system's state, never while this one runs.
   */
  getStateVersions(systemIds: readonly string[]): Promise<{ readonly systemId: string; readonly version: string }[]> {
    return this.#run("getStateVersions", () => {
      const found: { systemId: string; version: string }[] = [];
      for (const systemId of new Set(systemIds)) {
        const version = this.#tables.stateVersions.get(systemId);
        if (version !== undefined) found.push({ systemId, version });
      }
      return found;
    });
  }

  /** Ids among `runIds` of runs committed or staged here. A run deleted by `prune` is no longer found. */
  findRunIds(runIds: readonly string[]): Promise<string[]> {
    return this.#run("findRunIds", () => [...new Set(runIds)].filter((runId) => this.#runs.get(runId) !== undefined));
  }

  /**
   * Rejects, staging nothing, when a run id is already accepted (committed or staged) or repeats
   * in the batch. Ids of runs deleted by `prune` count as new again.
   */
  insertRuns(runs: readonly StoredRun[]): Promise<void> {
    return this.#run("insertRuns", () => {
      const batch = new Set<string>();
      for (const run of runs) {
        if (batch.has(run.runId) || this.#runs.get(run.runId) !== undefined) {
          throw new Error(`memory store: duplicate runId ${JSON.stringify(run.runId)}`);
        }
        batch.add(run.runId);
      }
      for (const run of runs) this.#runs.put({ runId: run.runId, timestamp: run.timestamp });
    });
  }

  /** Rejects, staging nothing, when an (entityId, sequence) is already logged (committed or staged) or repeats in the batch. */
  appendTransitions(transitions: readonly HealthTransitionRecord[]): Promise<void> {
    return this.#run("appendTransitions", () => {
      const batch = new Set<string>();
      for (const transition of transitions) {
        const key = transitionKey(transition.entityId, transition.sequence);
        if (batch.has(key) || this.#transitionKeys.has(key) || this.#tables.transitions.has(transition.entityId, transition.sequence)) {
          throw new Error(
            `memory store: duplicate transition (entityId ${JSON.stringify(transition.entityId)}, sequence ${transition.sequence})`,
          );
        }
        batch.add(key);
      }
      for (const transition of transitions.map(frozen)) {
        this.#transitions.push(transition);
        this.#transitionKeys.add(transitionKey(transition.entityId, transition.sequence));
        let staged = this.#transitionsByEntity.get(transition.entityId);
        if (staged === undefined) {
          staged = [];
          this.#transitionsByEntity.set(transition.entityId, staged);
        }
        staged.push(transition);
      }
    });
  }

  /**
   * Rejects, staging nothing, when an (entityId, sequence) or `eventId` is already in the outbox
   * (committed or staged) or repeats in the batch. Staged events get their outbox position at
   * commit, in the order they were enqueued.
   */
  enqueueEvents(events: readonly HealthEvent[]): Promise<void> {
    return this.#run("enqueueEvents", () => {
      const conflict = this.#deps.outbox.conflict([...this.#events, ...events]);
      if (conflict !== undefined) throw new Error(`memory store: ${conflict}`);
      this.#events.push(...events.map(frozen));
    });
  }

  /**
   * As `MemoryStore.listTransitions`, over the committed log (as committed now: read committed)
   * plus this transaction's own staged appends.
   */
  listTransitions(query: TransitionQuery): Promise<HealthTransitionRecord[]> {
    return this.#run("listTransitions", () =>
      this.#tables.transitions.list(query, this.#transitionsByEntity.get(query.entityId) ?? []),
    );
  }

  getMaintenance(systemIds: readonly string[]): Promise<MaintenanceRecord[]> {
    return this.#run("getMaintenance", () => this.#byPartition(this.#maintenance, systemIds));
  }

  /** Rejects, staging nothing, when a window's `start` or `end` is not an ISO 8601 time. */
  putMaintenance(windows: readonly MaintenanceRecord[]): Promise<void> {
    return this.#run("putMaintenance", () => {
      const checked = windows.map(storableWindow);
      for (const window of checked) this.#maintenance.put(window);
    });
  }

  deleteMaintenance(maintenanceIds: readonly string[]): Promise<void> {
    return this.#run("deleteMaintenance", () => {
      for (const maintenanceId of maintenanceIds) this.#maintenance.delete(maintenanceId);
    });
  }

  /**
   * The buckets among `keys` that exist, in the order of `keys` (a repeated key once). A start is
   * matched as an instant: `…T10:00:00Z` and `…T10:00:00.000Z` name the same bucket.
   */
  /** Not part of the port: reads buckets by key, in the order of the keys (for tests and tools). */
  getBuckets(keys: readonly BucketKey[]): Promise<RunBucket[]> {
    return this.#run("getBuckets", () => {
      const found: RunBucket[] = [];
      for (const key of new Set(keys.map(bucketKey))) {
        const bucket = this.#bucketView(key);
        if (bucket !== undefined) found.push(copy(bucket));
      }
      return found;
    });
  }

  /**
   * Creates or replaces buckets; the stored start is the canonical ISO form
   * (`Date.prototype.toISOString`). Rejects, staging nothing, when a bucket's start is not an ISO
   * 8601 time or its granularity is unknown. A key repeated in the batch keeps the last bucket.
   */
  /** Not part of the port: replaces buckets as given (for tests and tools). */
  putBuckets(buckets: readonly RunBucket[]): Promise<void> {
    return this.#run("putBuckets", () => {
      const checked = buckets.map(storableBucket);
      for (const bucket of checked) {
        this.#buckets.put(bucket);
        this.#bucketDeltas.delete(storedBucketKey(bucket));
      }
    });
  }

  /**
   * Merges each bucket into the stored one with the same key (`mergeBuckets`), or stores it.
   * Atomic per call: the whole batch is checked before anything is staged.
   */
  addToBuckets(buckets: readonly RunBucket[]): Promise<void> {
    return this.#run("addToBuckets", () => {
      const checked = buckets.map(storableBucket);
      for (const bucket of checked) {
        const key = storedBucketKey(bucket);
        const delta = this.#bucketDeltas.get(key);
        if (delta === undefined) this.#bucketDeltas.set(key, bucket);
        else mergeInto(delta, bucket);
      }
    });
  }

  /** A bucket as this transaction sees it: staged or committed, plus what it added. */
  #bucketView(key: string): RunBucket | undefined {
    const stored = this.#buckets.get(key);
    const delta = this.#bucketDeltas.get(key);
    if (delta === undefined) return stored;
    return stored === undefined ? delta : mergeBuckets(keyOfBucket(delta), [stored, delta]);
  }

  /** Every bucket of a system as this transaction sees it. */
  #bucketsOf(systemId: string): RunBucket[] {
    const seen = new Set<string>();
    const rows: RunBucket[] = [];
    for (const bucket of this.#buckets.partition(systemId)) {
      const key = storedBucketKey(bucket);
      seen.add(key);
      rows.push(this.#bucketView(key) as RunBucket);
    }
    for (const [key, delta] of this.#bucketDeltas) {
      if (delta.systemId === systemId && !seen.has(key)) rows.push(this.#bucketView(key) as RunBucket);
    }
    return rows;
  }

  /** Rejects, staging nothing, when a key's start is not an ISO 8601 time. */
  deleteBuckets(keys: readonly BucketKey[]): Promise<void> {
    return this.#run("deleteBuckets", () => {
      const checked = keys.map(bucketKey);
      for (const key of checked) {
        this.#buckets.delete(key);
        this.#bucketDeltas.delete(key);
      }
    });
  }

  /**
   * Up to `limit` buckets (fractions rounded down) of `granularity` of the given systems with a
   * start before `before`, as this transaction sees them: oldest first, then by slice (system,
   * check, environment; env-less first).
   */
  listBucketsBefore(query: {
    readonly systemIds: readonly string[];
    readonly granularity: BucketGranularity;
    readonly before: Date;
    readonly limit: number;
  }): Promise<RunBucket[]> {
    return this.#run("listBucketsBefore", () => {
      const before = timeOf(query.before, "before");
      const limit = limitOf(query.limit);
      const matching: RunBucket[] = [];
      for (const systemId of new Set(query.systemIds)) {
        for (const bucket of this.#bucketsOf(systemId)) {
          if (bucket.granularity === query.granularity && Date.parse(bucket.start) < before) matching.push(bucket);
        }
      }
      return matching
        .sort(compareBuckets)
        .slice(0, limit)
        .map((bucket) => copy(bucket));
    });
  }

  #run<T>(operation: string, work: () => T): Promise<T> {
    return promised(() => {
      this.#deps.lifecycle.assertOpen(`tx.${operation}`);
      if (this.#ended !== undefined) {
        throw new Error(`memory store: tx.${operation} called after the transaction ${this.#ended}`);
      }
      return work();
    });
  }

  #byPartition<V>(stage: TableStage<V>, systemIds: readonly string[]): V[] {
    const found: V[] = [];
    for (const systemId of new Set(systemIds)) for (const row of stage.partition(systemId)) found.push(shared(row));
    return found;
  }
}
