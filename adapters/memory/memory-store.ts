import type {
  AdapterCapabilities,
  AssignmentRecord,
  EntityRecord,
  HealthEvent,
  HealthStore,
  HealthTransitionRecord,
  SliceKey,
  SliceRecord,
  StoredRun,
  StoreTransaction,
  SystemRecord,
  TransitionQuery,
} from "healthstate";
import { CowTable, type TableStage } from "./cow-table";
import { MEMORY_CAPABILITIES, copy, promised, timeOf, type AdapterLifecycle } from "./lifecycle";
import type { MemoryOutbox } from "./memory-outbox";
import { TransitionLog } from "./transition-log";

const assignmentKey = (key: { readonly systemId: string; readonly checkId: string }): string =>
  JSON.stringify([key.systemId, key.checkId]);
const sliceKey = (key: SliceKey): string => JSON.stringify([key.systemId, key.checkId, key.environmentId]);
const transitionKey = (entityId: string, sequence: number): string => JSON.stringify([entityId, sequence]);

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

/** The committed tables of one memory store. */
class Tables {
  readonly systems = new CowTable<SystemRecord>((system) => system.systemId);
  readonly assignments = new CowTable<AssignmentRecord>(assignmentKey, (assignment) => assignment.systemId);
  readonly slices = new CowTable<SliceRecord>(sliceKey, (slice) => slice.systemId);
  readonly entities = new CowTable<EntityRecord>((entity) => entity.entityId, (entity) => entity.systemId);
  readonly runs = new CowTable<StoredRun>((run) => run.runId);
  readonly transitions = new TransitionLog();
}

/**
 * The memory adapter's `HealthStore`. Records are copied when written and when read, so a
 * caller can never change stored data through an argument or a result.
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
    fn: (tx: StoreTransaction) => Promise<T>,
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
        if (entity !== undefined) found.push(copy(entity));
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
}

/**
 * One transaction of `MemoryStore`. Each method works synchronously at call time (its promise
 * settles right after) and validates a whole batch before staging any of it, so a rejected
 * batch stages nothing.
 */
class MemoryTransaction implements StoreTransaction {
  readonly #tables: Tables;
  readonly #deps: MemoryStoreDeps;
  #ended: "committed" | "rolled back" | undefined;
  readonly #systems: TableStage<SystemRecord>;
  readonly #assignments: TableStage<AssignmentRecord>;
  readonly #slices: TableStage<SliceRecord>;
  readonly #entities: TableStage<EntityRecord>;
  readonly #runs: TableStage<StoredRun>;
  readonly #transitions: HealthTransitionRecord[] = [];
  readonly #transitionKeys = new Set<string>();
  readonly #events: HealthEvent[] = [];

  constructor(tables: Tables, deps: MemoryStoreDeps) {
    this.#tables = tables;
    this.#deps = deps;
    this.#systems = tables.systems.stage();
    this.#assignments = tables.assignments.stage();
    this.#slices = tables.slices.stage();
    this.#entities = tables.entities.stage();
    this.#runs = tables.runs.stage();
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
    this.#systems.apply();
    this.#assignments.apply();
    this.#slices.apply();
    this.#entities.apply();
    this.#runs.apply();
    this.#tables.transitions.insert(this.#transitions);
    this.#deps.outbox.append(this.#events, enqueuedAt);
    if (this.#events.length > 0) this.#deps.onEventsCommitted();
  }

  getSystems(systemIds: readonly string[]): Promise<SystemRecord[]> {
    return this.#run("getSystems", () => {
      const found: SystemRecord[] = [];
      for (const systemId of new Set(systemIds)) {
        const system = this.#systems.get(systemId);
        if (system !== undefined) found.push(copy(system));
      }
      return found;
    });
  }

  listSystemIds(): Promise<string[]> {
    return this.#run("listSystemIds", () => this.#systems.keys());
  }

  putSystem(system: SystemRecord): Promise<void> {
    return this.#run("putSystem", () => {
      this.#systems.put(copy(system));
    });
  }

  deleteSystem(systemId: string): Promise<void> {
    return this.#run("deleteSystem", () => {
      this.#systems.delete(systemId);
    });
  }

  getAssignments(systemIds: readonly string[]): Promise<AssignmentRecord[]> {
    return this.#run("getAssignments", () => this.#byPartition(this.#assignments, systemIds));
  }

  putAssignments(assignments: readonly AssignmentRecord[]): Promise<void> {
    return this.#run("putAssignments", () => {
      for (const assignment of copy(assignments)) this.#assignments.put(assignment);
    });
  }

  deleteAssignments(keys: readonly { readonly systemId: string; readonly checkId: string }[]): Promise<void> {
    return this.#run("deleteAssignments", () => {
      for (const key of keys) this.#assignments.delete(assignmentKey(key));
    });
  }

  getSlices(systemIds: readonly string[]): Promise<SliceRecord[]> {
    return this.#run("getSlices", () => this.#byPartition(this.#slices, systemIds));
  }

  putSlices(slices: readonly SliceRecord[]): Promise<void> {
    return this.#run("putSlices", () => {
      for (const slice of copy(slices)) this.#slices.put(slice);
    });
  }

  deleteSlices(keys: readonly SliceKey[]): Promise<void> {
    return this.#run("deleteSlices", () => {
      for (const key of keys) this.#slices.delete(sliceKey(key));
    });
  }

  getEntities(systemIds: readonly string[]): Promise<EntityRecord[]> {
    return this.#run("getEntities", () => this.#byPartition(this.#entities, systemIds));
  }

  putEntities(entities: readonly EntityRecord[]): Promise<void> {
    return this.#run("putEntities", () => {
      for (const entity of copy(entities)) this.#entities.put(entity);
    });
  }

  findRunIds(runIds: readonly string[]): Promise<string[]> {
    return this.#run("findRunIds", () => [...new Set(runIds)].filter((runId) => this.#runs.get(runId) !== undefined));
  }

  /** Rejects, staging nothing, when a run id is already accepted (committed or staged) or repeats in the batch. */
  insertRuns(runs: readonly StoredRun[]): Promise<void> {
    return this.#run("insertRuns", () => {
      const batch = new Set<string>();
      for (const run of runs) {
        if (batch.has(run.runId) || this.#runs.get(run.runId) !== undefined) {
          throw new Error(`memory store: duplicate runId ${JSON.stringify(run.runId)}`);
        }
        batch.add(run.runId);
      }
      for (const run of copy(runs)) this.#runs.put(run);
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
      for (const transition of copy(transitions)) {
        this.#transitions.push(transition);
        this.#transitionKeys.add(transitionKey(transition.entityId, transition.sequence));
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
      this.#events.push(...copy(events));
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
    for (const systemId of new Set(systemIds)) for (const row of stage.partition(systemId)) found.push(copy(row));
    return found;
  }
}
