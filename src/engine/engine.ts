import { ResultAsync } from "neverthrow";
import type { z } from "zod";
import type { HealthEntityState } from "../aggregate";
import {
  ClosedError,
  ConflictError,
  NotFoundError,
  StoreError,
  ValidationError,
  type ConfigurationIssue,
  type HealthError,
} from "../errors";
import type { HealthEvent } from "../events";
import { parseHealthEntityId, unsafeEncodeEntityId } from "../ids";
import {
  SystemWorkspace,
  applySystemSpec,
  assignmentFromSpec,
  runRejection,
  type HealthTransitionRecord,
  type StoredRun,
} from "../kernel";
import type { DeadLetter, StoreTransaction } from "../ports";
import { toIso, timeSchema } from "../time";
import {
  applyTopologyOptionsSchema,
  assignCheckSchema,
  idSchema,
  runInputSchema,
  subscribeOptionsSchema,
  toConfigurationIssues,
  topologyDocSchema,
  unassignCheckSchema,
  upsertSystemSchema,
  type AssignCheckInput,
  type RunInput,
  type SubscribeOptions,
  type TopologyDoc,
  type UnassignCheckInput,
  type UpsertSystemInput,
} from "../validation";
import { resolveOptions, type HealthEngineOptions, type ResolvedOptions } from "./options";
import { Subscription, type HealthEventHandler } from "./subscription";

/** What `recordRun` returns for one run. */
export interface RecordOutcome {
  readonly runId: string;
  /** The run id was already accepted: nothing was applied again and `events` is empty. */
  readonly duplicate: boolean;
  /** The events this call produced, in the order they were appended to the outbox. */
  readonly events: HealthEvent[];
}

/** What a topology operation returns. */
export interface TopologyOutcome {
  /** Whether any stored topology changed. Applying the same change twice gives `false` the second time. */
  readonly changed: boolean;
  /** The transitions the re-evaluation produced. */
  readonly events: HealthEvent[];
}

/** What `subscribe` returns. */
export interface HealthSubscription {
  /** Stops delivery to this handler; resolves once deliveries in flight have settled. */
  unsubscribe(): Promise<void>;
}

/** The engine: records runs and topology, answers health queries, delivers events. */
export interface HealthEngine {
  /**
   * Makes the stored topology match a declarative document (SPEC §13), atomically. Idempotent.
   * Systems and checks absent from the document are left alone unless `{ prune: true }`.
   */
  applyTopology(doc: TopologyDoc, options?: { readonly prune?: boolean }): ResultAsync<TopologyOutcome, HealthError>;
  /** Creates a system or replaces its ordered environment membership (duplicates rejected). */
  upsertSystem(input: UpsertSystemInput): ResultAsync<TopologyOutcome, HealthError>;
  /**
   * Assigns a check to an existing system, or updates the assignment: fields omitted on update
   * keep their current value; on creation they take the defaults (thresholds
   * `DEFAULT_THRESHOLDS`, all environments, enabled, not paused).
   */
  assignCheck(input: AssignCheckInput): ResultAsync<TopologyOutcome, HealthError>;
  /** Removes an assignment and its slices. Removing an absent assignment changes nothing. */
  unassignCheck(input: UnassignCheckInput): ResultAsync<TopologyOutcome, HealthError>;
  /**
   * Records one run: validates it against the topology, steps its slice, re-evaluates its
   * environment's entity and the rollup, and appends a transition and an outbox event for each
   * status change, all in one unit of work under the entities' locks. A `runId` that was already
   * accepted returns `{ duplicate: true, events: [] }` and changes nothing.
   */
  recordRun(run: RunInput): ResultAsync<RecordOutcome, HealthError>;
  /**
   * Records runs in order, in one unit of work and one lock round. One invalid run rejects the
   * whole batch with every problem listed (paths start with the run's index); nothing is written.
   */
  recordRuns(runs: readonly RunInput[]): ResultAsync<RecordOutcome[], HealthError>;
  /** The stored state of an entity; `undefined` when it does not exist. Malformed ids are a `ValidationError`. */
  getHealth(entityId: string): ResultAsync<HealthEntityState | undefined, HealthError>;
  /** Stored states keyed by the id strings given; entities that do not exist are absent. */
  getManyHealth(entityIds: readonly string[]): ResultAsync<Record<string, HealthEntityState>, HealthError>;
  /**
   * An entity's transition log in sequence order; `from` (inclusive) and `to` (exclusive) filter
   * on `occurredAt`; `limit` keeps the highest sequences.
   */
  listTransitions(query: {
    readonly entityId: string;
    readonly from?: string | Date;
    readonly to?: string | Date;
    readonly limit?: number;
  }): ResultAsync<HealthTransitionRecord[], HealthError>;
  /** ISO time the entity's current status began; `null` when it never left the healthy baseline. */
  inStatusSince(entityId: string): ResultAsync<string | null, HealthError>;
  /**
   * Delivers every event to `handler`, at least once, in per-entity sequence order, sharing the
   * work with every other subscription of the same `group` (in any process). A group seen for the
   * first time starts from the oldest retained event (`from: "now"` skips history). A throw or
   * rejection is retried with backoff; it never blocks other entities or groups.
   * @throws ValidationError for a missing or malformed group name.
   */
  subscribe(handler: HealthEventHandler, options: SubscribeOptions): HealthSubscription;
  /** Resolves once every event committed before the call is settled for every group subscribed on this engine. */
  flush(): Promise<void>;
  /** Dead letters of one group or all, newest first. */
  listDeadLetters(options?: { readonly group?: string; readonly limit?: number }): ResultAsync<DeadLetter[], HealthError>;
  /** Stops delivery and timers. Does not close the adapter (the engine does not own it). Idempotent. */
  close(): Promise<void>;
}

const lockKeyOf = (entityId: string) => `health:${entityId}`;

function isHealthError(error: unknown): error is HealthError {
  return (
    error instanceof ValidationError ||
    error instanceof ConflictError ||
    error instanceof NotFoundError ||
    error instanceof StoreError ||
    error instanceof ClosedError
  );
}

/**
 * Creates an engine over an adapter's store, lock and emitter. Options are validated.
 * @throws ValidationError for invalid options.
 */
export function createHealthEngine(options: HealthEngineOptions): HealthEngine {
  return new Engine(resolveOptions(options));
}

class Engine implements HealthEngine {
  private closed = false;
  private readonly subscriptions = new Set<Subscription>();
  private readonly removeAvailabilityListener: () => void;
  private housekeepingTimer: ReturnType<typeof setInterval> | undefined;
  private readonly instanceId = globalThis.crypto.randomUUID();
  private subscriptionCount = 0;

  constructor(private readonly options: ResolvedOptions) {
    this.removeAvailabilityListener = options.emitter.onAvailable(() => this.kickSubscriptions());
    if (options.timers) {
      this.housekeepingTimer = setInterval(() => void this.housekeeping(), 60_000);
      this.housekeepingTimer.unref?.();
    }
  }

  applyTopology(doc: TopologyDoc, options: { readonly prune?: boolean } = {}): ResultAsync<TopologyOutcome, HealthError> {
    return this.operation("applyTopology", async () => {
      const parsedDoc = parse(topologyDocSchema, doc);
      const { prune = false } = parse(applyTopologyOptionsSchema, options);
      const docSystems = new Map(parsedDoc.systems.map((system) => [system.systemId, system]));
      for (;;) {
        // Under prune the systems to remove must be locked too; they are listed first and the
        // list is checked again under the locks (a system created meanwhile means another round).
        const known = prune ? await this.options.store.transaction({ lockKeys: [] }, (tx) => tx.listSystemIds()) : [];
        const systemIds = [...new Set([...docSystems.keys(), ...known])];
        const lockKeys = systemIds.map((systemId) => lockKeyOf(unsafeEncodeEntityId(systemId, null)));
        const outcome = await this.unitOfWork(lockKeys, async (tx) => {
          if (prune) {
            const now = await tx.listSystemIds();
            if (now.some((systemId) => !systemIds.includes(systemId))) return undefined;
          }
          const workspaces = await loadWorkspaces(tx, systemIds);
          const occurredAt = toIso(this.options.clock());
          let changed = false;
          const events: HealthEvent[] = [];
          for (const systemId of systemIds) {
            const workspace = workspaces.get(systemId) as SystemWorkspace;
            const spec = docSystems.get(systemId);
            const systemChanged =
              spec === undefined ? workspace.deleteSystem() : applySystemSpec(workspace, spec, prune);
            if (!systemChanged) continue;
            changed = true;
            events.push(...workspace.applyTopologyChange(occurredAt));
          }
          await persist(tx, workspaces.values());
          return { changed, events };
        });
        if (outcome !== undefined) return outcome;
      }
    });
  }

  upsertSystem(input: UpsertSystemInput): ResultAsync<TopologyOutcome, HealthError> {
    return this.operation("upsertSystem", async () => {
      const system = parse(upsertSystemSchema, input);
      return this.changeSystem(system.systemId, system.environmentIds, (workspace) => workspace.setSystem(system));
    });
  }

  assignCheck(input: AssignCheckInput): ResultAsync<TopologyOutcome, HealthError> {
    return this.operation("assignCheck", async () => {
      const spec = parse(assignCheckSchema, input);
      return this.changeSystem(spec.systemId, [], (workspace) => {
        if (workspace.getSystem() === undefined) {
          throw new ValidationError([{ path: ["systemId"], message: `unknown system ${JSON.stringify(spec.systemId)}` }]);
        }
        const current = workspace.getAssignment(spec.checkId);
        return workspace.setAssignment(assignmentFromSpec(spec.systemId, spec, current));
      });
    });
  }

  unassignCheck(input: UnassignCheckInput): ResultAsync<TopologyOutcome, HealthError> {
    return this.operation("unassignCheck", async () => {
      const key = parse(unassignCheckSchema, input);
      return this.changeSystem(key.systemId, [], (workspace) => workspace.deleteAssignment(key.checkId));
    });
  }

  recordRun(run: RunInput): ResultAsync<RecordOutcome, HealthError> {
    return this.operation("recordRun", async () => {
      const [outcome] = await this.record([run], false);
      return outcome as RecordOutcome;
    });
  }

  recordRuns(runs: readonly RunInput[]): ResultAsync<RecordOutcome[], HealthError> {
    return this.operation("recordRuns", async () => {
      if (!Array.isArray(runs)) throw new ValidationError([{ path: [], message: "expected an array of runs" }]);
      return this.record(runs, true);
    });
  }

  getHealth(entityId: string): ResultAsync<HealthEntityState | undefined, HealthError> {
    return this.operation("getHealth", async () => {
      const id = parseEntityId(entityId, ["entityId"]);
      const [record] = await this.options.store.getEntitiesById([id]);
      return record?.state ?? undefined;
    });
  }

  getManyHealth(entityIds: readonly string[]): ResultAsync<Record<string, HealthEntityState>, HealthError> {
    return this.operation("getManyHealth", async () => {
      if (!Array.isArray(entityIds)) throw new ValidationError([{ path: [], message: "expected an array of entity ids" }]);
      const ids: readonly string[] = entityIds;
      const issues: ConfigurationIssue[] = [];
      ids.forEach((id, index) => {
        const parsed = parseHealthEntityId(id);
        if (parsed.isErr()) issues.push(...parsed.error.issues.map((issue) => ({ ...issue, path: [index] })));
      });
      if (issues.length > 0) throw new ValidationError(issues);
      const unique = [...new Set(ids)];
      const records = unique.length === 0 ? [] : await this.options.store.getEntitiesById(unique);
      const result: Record<string, HealthEntityState> = {};
      for (const record of records) if (record.state !== null) result[record.entityId] = record.state;
      return result;
    });
  }

  listTransitions(query: {
    readonly entityId: string;
    readonly from?: string | Date;
    readonly to?: string | Date;
    readonly limit?: number;
  }): ResultAsync<HealthTransitionRecord[], HealthError> {
    return this.operation("listTransitions", async () => {
      const entityId = parseEntityId(query?.entityId, ["entityId"]);
      const issues: ConfigurationIssue[] = [];
      const from = optionalTime(query.from, "from", issues);
      const to = optionalTime(query.to, "to", issues);
      if (from !== undefined && to !== undefined && from.getTime() >= to.getTime()) {
        issues.push({ path: ["to"], message: "must be after from (ranges are half-open [from, to) and may not be empty)" });
      }
      const limit = query.limit;
      if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
        issues.push({ path: ["limit"], message: "must be a positive integer" });
      }
      if (issues.length > 0) throw new ValidationError(issues);
      return this.options.store.listTransitions({
        entityId,
        ...(from === undefined ? {} : { from }),
        ...(to === undefined ? {} : { to }),
        ...(limit === undefined ? {} : { limit }),
      });
    });
  }

  inStatusSince(entityId: string): ResultAsync<string | null, HealthError> {
    return this.operation("inStatusSince", async () => {
      const id = parseEntityId(entityId, ["entityId"]);
      const [last] = await this.options.store.listTransitions({ entityId: id, limit: 1 });
      return last?.occurredAt ?? null;
    });
  }

  subscribe(handler: HealthEventHandler, options: SubscribeOptions): HealthSubscription {
    if (this.closed) throw new ClosedError("subscribe");
    if (typeof handler !== "function") throw new ValidationError([{ path: ["handler"], message: "must be a function" }]);
    const parsed = parse(subscribeOptionsSchema, options);
    this.subscriptionCount += 1;
    const subscription = new Subscription(
      this.options,
      parsed.group,
      handler,
      parsed.from ?? "oldest",
      `${this.instanceId}/${this.subscriptionCount}`,
    );
    this.subscriptions.add(subscription);
    return {
      unsubscribe: async () => {
        this.subscriptions.delete(subscription);
        await subscription.stop();
      },
    };
  }

  async flush(): Promise<void> {
    if (this.subscriptions.size === 0) return;
    // A group's pending count is only meaningful once the group is registered.
    await Promise.all([...this.subscriptions].map((subscription) => subscription.registered));
    const upTo = await this.options.emitter.highWatermark();
    // A referenced timer keeps the process alive while a caller awaits delivery.
    for (;;) {
      const groups = [...new Set([...this.subscriptions].map((subscription) => subscription.group))];
      const pending = await Promise.all(groups.map((group) => this.options.emitter.pendingCount({ group, upTo })));
      if (pending.every((count) => count === 0) || this.subscriptions.size === 0) return;
      this.kickSubscriptions();
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  listDeadLetters(options: { readonly group?: string; readonly limit?: number } = {}): ResultAsync<DeadLetter[], HealthError> {
    return this.operation("listDeadLetters", async () => {
      if (options.group !== undefined) parse(idSchema, options.group, ["group"]);
      return this.options.emitter.listDeadLetters(options);
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.housekeepingTimer !== undefined) clearInterval(this.housekeepingTimer);
    this.removeAvailabilityListener();
    const subscriptions = [...this.subscriptions];
    this.subscriptions.clear();
    await Promise.all(subscriptions.map((subscription) => subscription.stop()));
  }

  private kickSubscriptions(): void {
    for (const subscription of this.subscriptions) subscription.kick();
  }

  private async housekeeping(): Promise<void> {
    try {
      const now = this.options.clock();
      await this.options.emitter.prune({
        olderThan: new Date(now.getTime() - this.options.delivery.retentionMs),
        maxEvents: this.options.delivery.maxRetainedEvents,
      });
    } catch (error) {
      this.options.onBackgroundError(error);
    }
  }

  /** Wraps an operation: refuses after close, maps every failure to a typed `HealthError`. */
  private operation<T>(name: string, fn: () => Promise<T>): ResultAsync<T, HealthError> {
    const run = async () => {
      if (this.closed) throw new ClosedError(name);
      return fn();
    };
    return ResultAsync.fromPromise(run(), (error) => (isHealthError(error) ? error : new StoreError(name, error)));
  }

  /** Takes the locks in canonical order, runs one store transaction, then wakes delivery. */
  private async unitOfWork<T>(lockKeys: readonly string[], fn: (tx: StoreTransaction) => Promise<T>): Promise<T> {
    const keys = [...new Set(lockKeys)].sort();
    const { lock, store } = this.options;
    const result = await lock.withLock(keys, () => store.transaction({ lockKeys: keys }, fn));
    this.kickSubscriptions();
    return result;
  }

  private async changeSystem(
    systemId: string,
    environmentIds: readonly string[],
    change: (workspace: SystemWorkspace) => boolean,
  ): Promise<TopologyOutcome> {
    const lockKeys = [null, ...environmentIds].map((environmentId) => lockKeyOf(unsafeEncodeEntityId(systemId, environmentId)));
    return this.unitOfWork(lockKeys, async (tx) => {
      const workspaces = await loadWorkspaces(tx, [systemId]);
      const workspace = workspaces.get(systemId) as SystemWorkspace;
      if (!change(workspace)) return { changed: false, events: [] };
      const events = workspace.applyTopologyChange(toIso(this.options.clock()));
      await persist(tx, [workspace]);
      return { changed: true, events };
    });
  }

  private async record(inputs: readonly RunInput[], batch: boolean): Promise<RecordOutcome[]> {
    const issues: ConfigurationIssue[] = [];
    const valid = inputs.flatMap((input, index) => {
      const parsed = runInputSchema.safeParse(input);
      if (parsed.success) return [parsed.data];
      issues.push(...toConfigurationIssues(parsed.error.issues, batch ? [index] : []));
      return [];
    });
    if (issues.length > 0) throw new ValidationError(issues);
    if (valid.length === 0) return [];
    const now = this.options.clock();
    const recordedAt = toIso(now);
    const runs: StoredRun[] = valid.map((run) => ({
      runId: run.runId ?? this.options.generateId(),
      systemId: run.systemId,
      checkId: run.checkId,
      environmentId: run.environmentId ?? null,
      status: run.status,
      latencyMs: run.latencyMs ?? null,
      timestamp: toIso(run.timestamp ?? now),
      message: run.message ?? null,
      recordedAt,
    }));
    const systemIds = [...new Set(runs.map((run) => run.systemId))];
    const lockKeys = runs.flatMap((run) => [
      lockKeyOf(unsafeEncodeEntityId(run.systemId, null)),
      ...(run.environmentId === null ? [] : [lockKeyOf(unsafeEncodeEntityId(run.systemId, run.environmentId))]),
    ]);
    return this.unitOfWork(lockKeys, async (tx) => {
      const workspaces = await loadWorkspaces(tx, systemIds);
      const problems: ConfigurationIssue[] = [];
      runs.forEach((run, index) => {
        const workspace = workspaces.get(run.systemId) as SystemWorkspace;
        const rejection = runRejection(workspace.getSystem(), workspace.getAssignment(run.checkId), run);
        if (rejection !== undefined) problems.push({ path: batch ? [index, rejection.path] : [rejection.path], message: rejection.message });
      });
      if (problems.length > 0) throw new ValidationError(problems);
      const seen = new Set(await tx.findRunIds([...new Set(runs.map((run) => run.runId))]));
      const accepted: StoredRun[] = [];
      const outcomes = runs.map((run): RecordOutcome => {
        if (seen.has(run.runId)) return { runId: run.runId, duplicate: true, events: [] };
        seen.add(run.runId);
        accepted.push(run);
        const events = (workspaces.get(run.systemId) as SystemWorkspace).applyRun(run);
        return { runId: run.runId, duplicate: false, events };
      });
      await tx.insertRuns(accepted);
      await persist(tx, workspaces.values());
      return outcomes;
    });
  }
}

function parse<S extends z.ZodType>(schema: S, input: unknown, prefix: (string | number)[] = []): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) throw new ValidationError(toConfigurationIssues(parsed.error.issues, prefix));
  return parsed.data;
}

function parseEntityId(id: unknown, path: (string | number)[]): string {
  const parsed = parseHealthEntityId(id as string);
  if (parsed.isErr()) throw new ValidationError(parsed.error.issues.map((issue) => ({ ...issue, path })));
  return id as string;
}

function optionalTime(value: unknown, name: string, issues: ConfigurationIssue[]): Date | undefined {
  if (value === undefined) return undefined;
  const parsed = timeSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  issues.push(...toConfigurationIssues(parsed.error.issues, [name]));
  return undefined;
}

async function loadWorkspaces(tx: StoreTransaction, systemIds: readonly string[]): Promise<Map<string, SystemWorkspace>> {
  const [systems, assignments, slices, entities] = await Promise.all([
    tx.getSystems(systemIds),
    tx.getAssignments(systemIds),
    tx.getSlices(systemIds),
    tx.getEntities(systemIds),
  ]);
  return new Map(
    systemIds.map((systemId) => [
      systemId,
      new SystemWorkspace(systemId, {
        system: systems.find((system) => system.systemId === systemId),
        assignments: assignments.filter((assignment) => assignment.systemId === systemId),
        slices: slices.filter((slice) => slice.systemId === systemId),
        entities: entities.filter((entity) => entity.systemId === systemId),
      }),
    ]),
  );
}

async function persist(tx: StoreTransaction, workspaces: Iterable<SystemWorkspace>): Promise<void> {
  const all = [...workspaces].map((workspace) => workspace.changes());
  for (const changes of all) {
    if (changes.system !== undefined) await tx.putSystem(changes.system);
    if (changes.systemDeleted) await tx.deleteSystem(changes.systemId);
  }
  // One call per table for the whole unit of work, so an adapter can write each in one statement.
  const deletedAssignments = all.flatMap((changes) =>
    changes.deletedAssignments.map((checkId) => ({ systemId: changes.systemId, checkId })),
  );
  if (deletedAssignments.length > 0) await tx.deleteAssignments(deletedAssignments);
  const assignments = all.flatMap((changes) => changes.assignments);
  if (assignments.length > 0) await tx.putAssignments(assignments);
  const deletedSlices = all.flatMap((changes) => changes.deletedSlices);
  if (deletedSlices.length > 0) await tx.deleteSlices(deletedSlices);
  const slices = all.flatMap((changes) => changes.slices);
  if (slices.length > 0) await tx.putSlices(slices);
  const entities = all.flatMap((changes) => changes.entities);
  if (entities.length > 0) await tx.putEntities(entities);
  const transitions = all.flatMap((changes) => changes.transitions);
  if (transitions.length > 0) await tx.appendTransitions(transitions);
  const events = all.flatMap((changes) => changes.events);
  if (events.length > 0) await tx.enqueueEvents(events);
}
