import { ResultAsync } from "neverthrow";
import { z } from "zod";
import type { HealthEntityState } from "../aggregate";
import {
  ClosedError,
  ConflictError,
  NotFoundError,
  StoreError,
  ValidationError,
  isHealthError,
  type ConfigurationIssue,
  type HealthError,
} from "../errors";
import type { HealthEvent } from "../events";
import { parseHealthEntityId, unsafeEncodeEntityId } from "../ids";
import {
  SystemWorkspace,
  type FlappingConfig,
  applySystemSpec,
  assignmentFromSpec,
  runRejection,
  coversEntity,
  hasDueBoundary,
  type HealthTransitionRecord,
  type MaintenanceRecord,
  type StoredRun,
  type SystemSnapshot,
  type SystemState,
} from "../kernel";
import type { DeadLetter, StoreTransaction, TransitionQuery } from "../ports";
import { logForAvailability, logSuffixSince } from "./log-suffix";
import { addRuns, bucketStart, emptyBucket, mergeBuckets, successRate, summarizeLatency, type BucketGranularity, type BucketKey, type LatencySummary, type RunBucket } from "../buckets";
import { computeAvailability, type Availability } from "../history";
import { toIso, timeSchema } from "../time";
import {
  addMaintenanceSchema,
  endMaintenanceSchema,
  maintenanceIdSchema,
  timeRangeSchema,
  applyTopologyOptionsSchema,
  assignCheckSchema,
  inputFlappingIssues,
  idSchema,
  readInput,
  safeParseRunInput,
  subscribeOptionsSchema,
  toConfigurationIssues,
  topologyDocSchema,
  topologyInputFlappingIssues,
  unassignCheckSchema,
  upsertSystemSchema,
  type AssignCheckInput,
  type RunInput,
  type SubscribeOptions,
  type TopologyDoc,
  type UnassignCheckInput,
  type UpsertSystemInput,
  type ValidRun,
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

/** A half-open time range `[from, to)` over one entity. */
export interface TimeRangeQuery {
  readonly entityId: string;
  readonly from: string | Date;
  readonly to: string | Date;
}

/** What `runRetention` did. */
export interface RetentionOutcome {
  readonly runsPruned: number;
  readonly hourlyRolled: number;
  readonly dailyPruned: number;
  readonly transitionsPruned: number;
}

/** A maintenance window as `listMaintenance` returns it. */
export interface MaintenanceWindow {
  readonly maintenanceId: string;
  readonly entityId: string;
  readonly systemId: string;
  /** `null` when the window covers the whole system. */
  readonly environmentId: string | null;
  readonly start: string;
  readonly end: string;
  readonly reason: string | null;
  /** By the clock: before `start`, inside `[start, end)`, or after. */
  readonly state: "scheduled" | "active" | "ended";
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
   * Systems and checks absent from the document are left alone unless `{ prune: true }`. A check's
   * `flapping` override is validated merged with this engine's flap settings (`ValidationError`
   * at `["systems", i, "checks", j, "flapping", …]`, nothing written).
   */
  applyTopology(doc: TopologyDoc, options?: { readonly prune?: boolean }): ResultAsync<TopologyOutcome, HealthError>;
  /** Creates a system or replaces its ordered environment membership (duplicates rejected). */
  upsertSystem(input: UpsertSystemInput): ResultAsync<TopologyOutcome, HealthError>;
  /**
   * Assigns a check to an existing system, or updates the assignment: fields omitted on update
   * keep their current value; on creation they take the defaults (thresholds
   * `DEFAULT_THRESHOLDS`, all environments, enabled, not paused, no flap override).
   * `flapping` overrides the engine's flap settings for this assignment (SPEC §10, see
   * `FlappingOverride` and `resolveEntityFlapping`); `null` removes the override. Its thresholds
   * merged with the engine's must be `low < high`, else a `ValidationError` at
   * `["flapping", "low"]` (or `"high"`) and nothing is written. Changing only the override is a
   * topology change.
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
  /**
   * Availability of an entity over `[from, min(to, now))` (SPEC §9): time-weighted shares of each
   * status from the transition log (degraded counts as unavailable in `availability`), incidents,
   * MTTR, MTBF, and the run success rate from buckets (hour granularity: buckets whose hour starts
   * in `[hour of from, min(to, now))`). A window entirely in the future is a `ValidationError`; an entity
   * that never existed is a `NotFoundError`.
   */
  availability(query: TimeRangeQuery): ResultAsync<Availability, HealthError>;
  /**
   * Latency statistics of an entity's runs (ms) over the buckets whose hour (or day, for rolled
   * data) starts in `[from, to)`, merged across its checks and slices; `null` when no run in
   * range reported a latency. Quantiles are within 1% relative error.
   */
  latency(query: TimeRangeQuery): ResultAsync<LatencySummary | null, HealthError>;
  /**
   * Applies retention (SPEC §9): prunes raw runs, rolls hourly buckets whose hour is wholly past
   * the hourly horizon into daily ones, prunes old daily buckets, and prunes transitions older than
   * the daily horizon except each entity's newest. Each step is its own transaction; running it
   * twice, or again after a crash, never double-counts.
   */
  runRetention(options?: { readonly now?: string | Date }): ResultAsync<RetentionOutcome, HealthError>;
  /**
   * Schedules a maintenance window on an entity, or on a whole system when `entityId` is a rollup
   * id (SPEC §11). Transitions inside `[start, end)` are marked `inMaintenance`; boundary events
   * are emitted once each, by `tick` (the engine's timer, or yours), in every entity's sequence.
   */
  addMaintenance(input: {
    readonly entityId: string;
    readonly start: string | Date;
    readonly end: string | Date;
    readonly reason?: string;
  }): ResultAsync<{ readonly maintenanceId: string; readonly events: HealthEvent[] }, HealthError>;
  /**
   * Ends a window early, at `at` (default now). A window that has not started is cancelled
   * without events. Ending an ended window is a `ConflictError`; an unknown id a `NotFoundError`.
   */
  endMaintenance(input: {
    readonly maintenanceId: string;
    readonly at?: string | Date;
  }): ResultAsync<{ readonly events: HealthEvent[] }, HealthError>;
  /** Deletes a window that is not active (scheduled or ended); an active one must be ended first. */
  deleteMaintenance(input: { readonly maintenanceId: string }): ResultAsync<void, HealthError>;
  /** Windows of every system, or those covering one entity, ordered by start. */
  listMaintenance(query?: { readonly entityId?: string }): ResultAsync<MaintenanceWindow[], HealthError>;
  /**
   * Emits the maintenance boundary events due at `now` (default the clock's now), once each
   * across every engine sharing the store, and returns them.
   */
  tick(now?: string | Date): ResultAsync<HealthEvent[], HealthError>;
  /** Dead letters of one group or all, newest first. */
  listDeadLetters(options?: { readonly group?: string; readonly limit?: number }): ResultAsync<DeadLetter[], HealthError>;
  /** Stops delivery and timers. Does not close the adapter (the engine does not own it). Idempotent. */
  close(): Promise<void>;
}

const lockKeyOf = (entityId: string) => `health:${entityId}`;

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
  private tickTimer: ReturnType<typeof setInterval> | undefined;
  private ticking = false;
  private readonly instanceId = globalThis.crypto.randomUUID();
  private subscriptionCount = 0;
  /** Single `recordRun` calls waiting for their system's next group commit (see `enqueueSingle`). */
  private readonly pendingSingles = new Map<
    string,
    { run: StoredRun; resolve: (outcome: RecordOutcome) => void; reject: (error: unknown) => void }[]
  >();
  /** Systems with a unit of work of single calls in flight. */
  private readonly singleSystemsInFlight = new Set<string>();
  /** Committed state of systems this engine wrote, for stores with state versions (see `StateCache`). */
  private readonly stateCache: StateCache;

  constructor(private readonly options: ResolvedOptions) {
    this.stateCache = new StateCache(options.stateCacheSystems);
    this.removeAvailabilityListener = options.emitter.onAvailable(() => this.kickSubscriptions());
    if (options.timers) {
      this.housekeepingTimer = setInterval(() => void this.housekeeping(), 60_000);
      this.housekeepingTimer.unref?.();
      this.tickTimer = setInterval(() => void this.timedTick(), options.tickIntervalMs);
      this.tickTimer.unref?.();
    }
  }

  applyTopology(doc: TopologyDoc, options: { readonly prune?: boolean } = {}): ResultAsync<TopologyOutcome, HealthError> {
    return this.operation("applyTopology", async () => {
      const parsedDoc = parseWithOverrides(topologyDocSchema, doc, (input) => topologyInputFlappingIssues(this.options.flapping, input));
      const { prune = false } = parse(applyTopologyOptionsSchema, options);
      const docSystems = new Map(parsedDoc.systems.map((system) => [system.systemId, system]));
      for (;;) {
        // Under prune the systems to remove must be locked too; they are listed first and the
        // list is checked again under the locks (a system created meanwhile means another round).
        const known = prune ? await this.options.store.transaction({ lockKeys: [] }, (tx) => tx.listSystemIds()) : [];
        const systemIds = [...new Set([...docSystems.keys(), ...known])];
        const lockKeys = systemIds.map((systemId) => lockKeyOf(unsafeEncodeEntityId(systemId, null)));
        let written: { tx: StoreTransaction; workspaces: Map<string, SystemWorkspace> } | undefined;
        const outcome = await this.unitOfWork(lockKeys, async (tx) => {
          written = undefined;
          if (prune) {
            const now = await tx.listSystemIds();
            if (now.some((systemId) => !systemIds.includes(systemId))) return undefined;
          }
          const workspaces = await loadWorkspaces(tx, systemIds, this.options.flapping);
          written = { tx, workspaces };
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
        if (outcome === undefined) continue;
        if (written !== undefined) this.stateCache.written(written.tx, written.workspaces.values());
        return outcome;
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
      const spec = parseWithOverrides(assignCheckSchema, input, (checked) => inputFlappingIssues(this.options.flapping, checked));
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
      if (!readInput(() => Array.isArray(runs))) throw new ValidationError([{ path: [], message: "expected an array of runs" }]);
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
      const ids = readInput(() => {
        if (!Array.isArray(entityIds)) throw new ValidationError([{ path: [], message: "expected an array of entity ids" }]);
        // By index, so that a hole is reported rather than skipped; copied, so it is read once.
        return Array.from({ length: entityIds.length }, (_, index) => entityIds[index] as string);
      });
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
      const given = readInput(() => ({ entityId: query?.entityId, from: query?.from, to: query?.to, limit: query?.limit }));
      const entityId = parseEntityId(given.entityId, ["entityId"]);
      const issues: ConfigurationIssue[] = [];
      const from = optionalTime(given.from, "from", issues);
      const to = optionalTime(given.to, "to", issues);
      if (from !== undefined && to !== undefined && from.getTime() >= to.getTime()) {
        issues.push({ path: ["to"], message: "must be after from (ranges are half-open [from, to) and may not be empty)" });
      }
      const limit = given.limit;
      const limitCheck = limit === undefined ? undefined : limitSchema.safeParse(limit);
      if (limitCheck?.success === false) issues.push(...toConfigurationIssues(limitCheck.error.issues, ["limit"]));
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
      if (last === undefined) return null;
      // The newest transition (by sequence) set the current status, at the time it took effect:
      // walking the log in sequence order, the latest `occurredAt` so far (as availability and
      // maintenance read it). Only transitions at or after its own time can be later, so they are
      // all that is read (the newest alone unless runs arrived out of order).
      let since = last;
      for (const transition of await this.options.store.listTransitions({ entityId: id, from: new Date(Date.parse(last.occurredAt)) })) {
        if (Date.parse(transition.occurredAt) > Date.parse(since.occurredAt)) since = transition;
      }
      return since.occurredAt;
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

  availability(query: TimeRangeQuery): ResultAsync<Availability, HealthError> {
    return this.operation("availability", async () => {
      const { entityId, ref, from, to } = parseRangeQuery(query);
      const now = this.options.clock();
      if (from.getTime() >= now.getTime()) {
        throw new ValidationError([{ path: ["from"], message: "must be in the past (the window [from, min(to, now)) is empty)" }]);
      }
      const [record] = await this.options.store.getEntitiesById([entityId]);
      if (record === undefined) throw new NotFoundError(`unknown entity ${JSON.stringify(entityId)}`);
      const end = new Date(Math.min(to.getTime(), now.getTime()));
      // The log from before `from` on, not only the part earlier than `to`: a transition at or
      // after the window's end ends the walk, and a late one after it (earlier `occurredAt`,
      // higher sequence) takes effect at that transition's time, outside the window; left out, it
      // would count inside.
      const store = this.options.store;
      const [log, buckets] = await Promise.all([
        // Bounded by the entity's sequence as read above: its reads all see the log as it was then.
        logForAvailability((transitionQuery) => store.listTransitions(transitionQuery), entityId, from, record.sequence),
        this.bucketsOf(ref, from, end),
      ]);
      return computeAvailability({ ...log, from, to, now, successRate: successRate(buckets) }) as Availability;
    });
  }

  latency(query: TimeRangeQuery): ResultAsync<LatencySummary | null, HealthError> {
    return this.operation("latency", async () => {
      const { ref, from, to } = parseRangeQuery(query);
      return summarizeLatency(await this.bucketsOf(ref, from, to));
    });
  }

  runRetention(options?: { readonly now?: string | Date }): ResultAsync<RetentionOutcome, HealthError> {
    return this.operation("runRetention", async () => {
      const given = readInput(() => optionsObject(options, "runRetention options").now);
      const now = given === undefined ? this.options.clock() : parse(timeSchema, given, ["now"]);
      const day = 24 * 3_600_000;
      const { rawRetentionDays, hourlyRetentionDays, dailyRetentionDays } = this.options.retention;
      // A horizon before the earliest time a Date holds (a `now` near it) is that earliest time:
      // nothing is older, and the store is never handed an invalid Date.
      const horizon = (ms: number) => new Date(Math.max(ms, EARLIEST_TIME_MS));
      // An hour rolls once all of it is past the hourly horizon: start + 1 h <= horizon.
      const rollBefore = horizon(now.getTime() - hourlyRetentionDays * day - 3_600_000 + 1);
      let hourlyRolled = 0;
      const systems = await this.options.store.listSystemsWithBucketsBefore({ granularity: "hour", before: rollBefore });
      for (const systemId of systems) {
        const lockKeys = [lockKeyOf(unsafeEncodeEntityId(systemId, null))];
        for (;;) {
          const rolled = await this.unitOfWork(lockKeys, (tx) => rollHourly(tx, systemId, rollBefore));
          hourlyRolled += rolled;
          if (rolled < ROLL_CHUNK) break;
        }
      }
      const pruned = await this.options.store.prune({
        runsBefore: horizon(now.getTime() - rawRetentionDays * day),
        dailyBefore: horizon(now.getTime() - dailyRetentionDays * day),
        transitionsBefore: horizon(now.getTime() - dailyRetentionDays * day),
      });
      return { runsPruned: pruned.runs, hourlyRolled, dailyPruned: pruned.daily, transitionsPruned: pruned.transitions };
    });
  }

  addMaintenance(input: {
    readonly entityId: string;
    readonly start: string | Date;
    readonly end: string | Date;
    readonly reason?: string;
  }): ResultAsync<{ readonly maintenanceId: string; readonly events: HealthEvent[] }, HealthError> {
    return this.operation("addMaintenance", async () => {
      const parsed = parse(addMaintenanceSchema, input);
      const ref = parseHealthEntityId(parsed.entityId)._unsafeUnwrap();
      const maintenanceId = this.options.generateId();
      const now = this.options.clock();
      const events = await this.unitOfWork([lockKeyOf(unsafeEncodeEntityId(ref.systemId, null))], async (tx) => {
        const workspace = (await loadWorkspaces(tx, [ref.systemId], this.options.flapping)).get(ref.systemId) as SystemWorkspace;
        const system = workspace.getSystem();
        if (system === undefined) {
          throw new ValidationError([{ path: ["entityId"], message: `unknown system ${JSON.stringify(ref.systemId)}` }]);
        }
        if (ref.environmentId !== null && !system.environmentIds.includes(ref.environmentId)) {
          throw new ValidationError([
            { path: ["entityId"], message: `environment ${JSON.stringify(ref.environmentId)} is not in the membership of system ${JSON.stringify(ref.systemId)}` },
          ]);
        }
        workspace.putMaintenance({
          maintenanceId,
          entityId: parsed.entityId,
          systemId: ref.systemId,
          environmentId: ref.environmentId,
          start: toIso(parsed.start),
          end: toIso(parsed.end),
          reason: parsed.reason ?? null,
          startedEntities: null,
          ended: false,
          createdAt: toIso(now),
        });
        return this.processBoundaries(tx, workspace, now);
      });
      return { maintenanceId, events };
    });
  }

  endMaintenance(input: { readonly maintenanceId: string; readonly at?: string | Date }): ResultAsync<{ readonly events: HealthEvent[] }, HealthError> {
    return this.operation("endMaintenance", async () => {
      const parsed = parse(endMaintenanceSchema, input);
      const now = this.options.clock();
      const at = parsed.at ?? now;
      const events = await this.withWindow(parsed.maintenanceId, async (tx, workspace, window) => {
        if (window.ended) throw new ConflictError(`maintenance ${JSON.stringify(window.maintenanceId)} has already ended`);
        const start = Date.parse(window.start);
        if (window.startedEntities === null && at.getTime() <= start) {
          await tx.deleteMaintenance([window.maintenanceId]);
          return [];
        }
        const end = Math.min(Date.parse(window.end), Math.max(at.getTime(), start));
        workspace.putMaintenance({ ...window, end: new Date(end).toISOString() });
        return this.processBoundaries(tx, workspace, now);
      });
      return { events };
    });
  }

  deleteMaintenance(input: { readonly maintenanceId: string }): ResultAsync<void, HealthError> {
    return this.operation("deleteMaintenance", async () => {
      const { maintenanceId } = parse(maintenanceIdSchema, input);
      await this.withWindow(maintenanceId, async (tx, _workspace, window) => {
        if (window.startedEntities !== null && !window.ended) {
          throw new ConflictError(`maintenance ${JSON.stringify(maintenanceId)} is active; end it before deleting it`);
        }
        await tx.deleteMaintenance([maintenanceId]);
        return [];
      });
    });
  }

  listMaintenance(query?: { readonly entityId?: string }): ResultAsync<MaintenanceWindow[], HealthError> {
    return this.operation("listMaintenance", async () => {
      const given = readInput(() => optionsObject(query, "listMaintenance query").entityId);
      const entityId = given === undefined ? undefined : parseEntityId(given, ["entityId"]);
      const ref = entityId === undefined ? undefined : parseHealthEntityId(entityId)._unsafeUnwrap();
      const windows = await this.options.store.listMaintenance(ref === undefined ? {} : { systemId: ref.systemId });
      const now = this.options.clock().getTime();
      return windows
        .filter((window) => ref === undefined || ref.environmentId === null || coversEntity(window, entityId as string, ref.systemId))
        .map((window) => ({
          maintenanceId: window.maintenanceId,
          entityId: window.entityId,
          systemId: window.systemId,
          environmentId: window.environmentId,
          start: window.start,
          end: window.end,
          reason: window.reason,
          state: now < Date.parse(window.start) ? "scheduled" : now < Date.parse(window.end) ? "active" : "ended",
        }));
    });
  }

  tick(now?: string | Date): ResultAsync<HealthEvent[], HealthError> {
    return this.operation("tick", async () => {
      const at = now === undefined ? this.options.clock() : parse(timeSchema, now, ["now"]);
      const events: HealthEvent[] = [];
      for (const systemId of await this.options.store.findDueMaintenance(at)) {
        const lockKeys = [lockKeyOf(unsafeEncodeEntityId(systemId, null))];
        events.push(
          ...(await this.unitOfWork(lockKeys, async (tx) => {
            const workspace = (await loadWorkspaces(tx, [systemId], this.options.flapping)).get(systemId) as SystemWorkspace;
            return this.processBoundaries(tx, workspace, at);
          })),
        );
      }
      return events;
    });
  }

  /** Runs `fn` on a maintenance window under its system's lock; an unknown id is a `NotFoundError`. */
  private async withWindow(
    maintenanceId: string,
    fn: (tx: StoreTransaction, workspace: SystemWorkspace, window: MaintenanceRecord) => Promise<HealthEvent[]>,
  ): Promise<HealthEvent[]> {
    const [found] = await this.options.store.listMaintenance({ maintenanceId });
    if (found === undefined) throw new NotFoundError(`unknown maintenance ${JSON.stringify(maintenanceId)}`);
    return this.unitOfWork([lockKeyOf(unsafeEncodeEntityId(found.systemId, null))], async (tx) => {
      const workspace = (await loadWorkspaces(tx, [found.systemId], this.options.flapping)).get(found.systemId) as SystemWorkspace;
      const window = workspace.listMaintenance().find((candidate) => candidate.maintenanceId === maintenanceId);
      if (window === undefined) throw new NotFoundError(`unknown maintenance ${JSON.stringify(maintenanceId)}`);
      return fn(tx, workspace, window);
    });
  }

  /**
   * Emits due boundary events of a loaded system and persists the workspace. Each entity's log is
   * read from the earliest start among the due windows on (`logSuffixSince`): the statuses at a
   * window's start and end need nothing older, so a boundary costs what happened since, not the
   * entity's whole history.
   */
  private async processBoundaries(tx: StoreTransaction, workspace: SystemWorkspace, now: Date): Promise<HealthEvent[]> {
    const due = workspace.listMaintenance().filter((window) => hasDueBoundary(window, now));
    const logs = new Map<string, HealthTransitionRecord[]>();
    if (due.length > 0) {
      const since = new Date(Math.min(...due.map((window) => Date.parse(window.start))));
      const list = (query: TransitionQuery) => tx.listTransitions(query);
      for (const entity of workspace.listEntities()) {
        logs.set(entity.entityId, await logSuffixSince(list, entity.entityId, since));
      }
    }
    const events = due.length > 0 ? workspace.processMaintenance(now, (entityId) => logs.get(entityId) ?? []) : [];
    await persist(tx, [workspace]);
    return events;
  }

  /**
   * The hourly and daily buckets of an entity's slices whose start lies in `[hour/day of from,
   * to)`, as one consistent state.
   * Retention moves an hour into its day in one transaction, but the two reads are two: an hour
   * read before the move and its day after it would count the hour twice, the other way round
   * not at all. So the days are read before and after the hours, and the hours and days again
   * until the days read the same both times: days only change by such moves (and by pruning), so
   * equal days mean no move of these days committed while the hours were read.
   */
  private async bucketsOf(ref: { systemId: string; environmentId: string | null }, from: Date, to: Date): Promise<RunBucket[]> {
    const filter = { systemId: ref.systemId, ...(ref.environmentId === null ? {} : { environmentId: ref.environmentId }) };
    const read = (granularity: BucketGranularity) =>
      this.options.store.queryBuckets({ ...filter, granularity, from: new Date(bucketStart(from, granularity)), to });
    let before = await read("day");
    for (let attempt = 1; ; attempt += 1) {
      const hourly = await read("hour");
      const daily = await read("day");
      // A retention run rolls a system's hours in chunks, each its own transaction: a few attempts
      // see it through; a read that keeps colliding gives up with an error rather than a wrong answer.
      if (sameRuns(before, daily)) return [...hourly, ...daily];
      if (attempt === CONSISTENT_READ_ATTEMPTS) throw new Error(`buckets of ${ref.systemId} kept changing while read (${attempt} attempts)`);
      // The days just read were read before the next hours: they open the next attempt.
      before = daily;
    }
  }

  listDeadLetters(options?: { readonly group?: string; readonly limit?: number }): ResultAsync<DeadLetter[], HealthError> {
    return this.operation("listDeadLetters", async () => {
      const { group, limit } = readInput(() => {
        const given = optionsObject(options, "listDeadLetters options");
        return { group: given.group, limit: given.limit };
      });
      if (group !== undefined) parse(idSchema, group, ["group"]);
      if (limit !== undefined) parse(limitSchema, limit, ["limit"]);
      return this.options.emitter.listDeadLetters({ ...(group === undefined ? {} : { group }), ...(limit === undefined ? {} : { limit }) });
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.housekeepingTimer !== undefined) clearInterval(this.housekeepingTimer);
    if (this.tickTimer !== undefined) clearInterval(this.tickTimer);
    this.removeAvailabilityListener();
    const subscriptions = [...this.subscriptions];
    this.subscriptions.clear();
    await Promise.all(subscriptions.map((subscription) => subscription.stop()));
  }

  private kickSubscriptions(): void {
    for (const subscription of this.subscriptions) subscription.kick();
  }

  /** The timer's tick: one at a time, failures reported, never thrown. */
  private async timedTick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = true;
    try {
      const result = await this.tick();
      if (result.isErr() && !(result.error instanceof ClosedError)) this.options.onBackgroundError(result.error);
    } finally {
      this.ticking = false;
    }
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
    // A group subscribed "from now" must be registered before any later write commits.
    const registering = [...this.subscriptions].filter((subscription) => !subscription.registrationSettled);
    if (registering.length > 0) await Promise.all(registering.map((subscription) => subscription.registered));
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
    let written: { tx: StoreTransaction; workspace: SystemWorkspace } | undefined;
    const outcome = await this.unitOfWork(lockKeys, async (tx) => {
      written = undefined;
      const workspaces = await loadWorkspaces(tx, [systemId], this.options.flapping);
      const workspace = workspaces.get(systemId) as SystemWorkspace;
      if (!change(workspace)) return { changed: false, events: [] };
      const events = workspace.applyTopologyChange(toIso(this.options.clock()));
      await persist(tx, [workspace]);
      written = { tx, workspace };
      return { changed: true, events };
    });
    if (written !== undefined) this.stateCache.written(written.tx, [written.workspace]);
    return outcome;
  }

  private async record(inputs: readonly RunInput[], batch: boolean): Promise<RecordOutcome[]> {
    const issues: ConfigurationIssue[] = [];
    const valid: ValidRun[] = [];
    // Every slot by index: a hole in the array is a missing run, not one to skip.
    for (let index = 0; index < inputs.length; index += 1) {
      const path = batch ? [index] : [];
      const parsed = readInput(() => safeParseRunInput(inputs[index]), path);
      if (parsed.success) valid.push(parsed.data);
      else issues.push(...toConfigurationIssues(parsed.error.issues, path));
    }
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
    if (!batch) return [await this.enqueueSingle(runs[0] as StoredRun)];
    const outcomes = await this.commitRuns(runs, "batch");
    return outcomes as RecordOutcome[];
  }

  /**
   * Group commit of single `recordRun` calls, per system: a call on a system with no unit of work
   * of single calls in flight starts one at once with its run alone; calls on that system that
   * arrive while one is in flight wait for it and then go together, in arrival order, in one unit
   * of work (one lock round, one transaction, one COMMIT). Calls on different systems are never
   * grouped and never wait for each other (SPEC §8, G5): they would not share a lock anyway. Each
   * caller gets its own outcome; a run the topology rejects fails only its own call. A failure of
   * the unit of work itself (the store, a lock timeout) fails every call of the group, none of
   * whose runs was written. Concurrency changes nothing else: the runs of a group are applied one
   * after another, exactly as if the calls had been serialized in that order.
   */
  private enqueueSingle(run: StoredRun): Promise<RecordOutcome> {
    return new Promise<RecordOutcome>((resolve, reject) => {
      const queue = this.pendingSingles.get(run.systemId);
      if (queue === undefined) this.pendingSingles.set(run.systemId, [{ run, resolve, reject }]);
      else queue.push({ run, resolve, reject });
      this.pumpSingles(run.systemId);
    });
  }

  private pumpSingles(systemId: string): void {
    if (this.singleSystemsInFlight.has(systemId)) return;
    const queue = this.pendingSingles.get(systemId);
    if (queue === undefined) return;
    const group = queue.splice(0, MAX_SINGLE_GROUP_SIZE);
    if (queue.length === 0) this.pendingSingles.delete(systemId);
    this.singleSystemsInFlight.add(systemId);
    void this.commitRuns(
      group.map((pending) => pending.run),
      "group",
    )
      .then(
        (outcomes) =>
          group.forEach((pending, index) => {
            const outcome = outcomes[index];
            if (outcome instanceof ValidationError) pending.reject(outcome);
            else pending.resolve(outcome as RecordOutcome);
          }),
        (error: unknown) => group.forEach((pending) => pending.reject(error)),
      )
      .finally(() => {
        this.singleSystemsInFlight.delete(systemId);
        this.pumpSingles(systemId);
      });
  }

  /**
   * Applies validated runs in one unit of work. A run the topology rejects fails the whole batch
   * (`"batch"`: nothing is written, every problem listed with the run's index), or only itself
   * (`"group"`: its slot holds its `ValidationError`, the others are applied).
   */
  private commitRuns(runs: readonly StoredRun[], mode: "batch" | "group"): Promise<(RecordOutcome | ValidationError)[]> {
    const batch = mode === "batch";
    const systemIds = [...new Set(runs.map((run) => run.systemId))];
    const lockKeys = runs.flatMap((run) => [
      lockKeyOf(unsafeEncodeEntityId(run.systemId, null)),
      ...(run.environmentId === null ? [] : [lockKeyOf(unsafeEncodeEntityId(run.systemId, run.environmentId))]),
    ]);
    // The last attempt's reads (a store may run the unit of work again after a transient failure).
    let attempt: { tx: StoreTransaction; loaded: CachedLoad } | undefined;
    const work = this.unitOfWork(lockKeys, async (tx) => {
      // One round of reads: the workspaces and the run-id check together (one statement on Postgres).
      const [loaded, known] = await Promise.all([
        this.stateCache.load(tx, systemIds, this.options.flapping),
        tx.findRunIds([...new Set(runs.map((run) => run.runId))]),
      ]);
      attempt = { tx, loaded };
      const { workspaces } = loaded;
      const problems: ConfigurationIssue[] = [];
      const rejected = runs.map((run, index) => {
        const workspace = workspaces.get(run.systemId) as SystemWorkspace;
        const rejection = runRejection(workspace.getSystem(), workspace.getAssignment(run.checkId), run);
        if (rejection === undefined) return undefined;
        problems.push({ path: batch ? [index, rejection.path] : [rejection.path], message: rejection.message });
        return new ValidationError([{ path: [rejection.path], message: rejection.message }]);
      });
      if (batch && problems.length > 0) throw new ValidationError(problems);
      const seen = new Set(known);
      const accepted: StoredRun[] = [];
      const fates = runs.map((run, index): "applied" | "duplicate" | ValidationError => {
        const rejection = rejected[index];
        if (rejection !== undefined) return rejection;
        if (seen.has(run.runId)) return "duplicate";
        seen.add(run.runId);
        accepted.push(run);
        return "applied";
      });
      // The runs and their buckets depend on nothing the kernel computes: written first, a store
      // that sends big writes at once (Postgres) has the server execute them while the kernel runs.
      // Buckets before the state: the outbox insert, when there are events, comes last, so an
      // adapter that combines writes sends the rest as one statement.
      await Promise.all([tx.insertRuns(accepted), addToBuckets(tx, accepted)]);
      const outcomes = runs.map((run, index): RecordOutcome | ValidationError => {
        const fate = fates[index];
        if (fate instanceof ValidationError) return fate;
        if (fate === "duplicate") return { runId: run.runId, duplicate: true, events: [] };
        const events = (workspaces.get(run.systemId) as SystemWorkspace).applyRun(run);
        return { runId: run.runId, duplicate: false, events };
      });
      await persist(tx, workspaces.values());
      return outcomes;
    });
    // A failed unit of work leaves the cache as it was: what it holds is still what its version says.
    return work.then((outcomes) => {
      if (attempt !== undefined) this.stateCache.committed(attempt.tx, attempt.loaded);
      return outcomes;
    });
  }
}

function parse<S extends z.ZodType>(schema: S, input: unknown, prefix: (string | number)[] = []): z.output<S> {
  const parsed = readInput(() => schema.safeParse(input), prefix);
  if (!parsed.success) throw new ValidationError(toConfigurationIssues(parsed.error.issues, prefix));
  return parsed.data;
}

/**
 * `parse`, plus the problems of the input's flap overrides merged with the engine's settings
 * (`overrideIssues`), which the static schema cannot check: of the parsed copy when the input
 * parses, else of the raw input (each override valid on its own), so that they come with the
 * schema's problems at once (SPEC §13).
 */
function parseWithOverrides<S extends z.ZodType>(schema: S, input: unknown, overrideIssues: (input: unknown) => ConfigurationIssue[]): z.output<S> {
  const parsed = readInput(() => schema.safeParse(input));
  const issues = parsed.success ? [] : toConfigurationIssues(parsed.error.issues, []);
  issues.push(...readInput(() => overrideIssues(parsed.success ? parsed.data : input)));
  if (issues.length > 0) throw new ValidationError(issues);
  return parsed.data as z.output<S>;
}

/** An operation's optional options argument: `undefined` is none; anything but an object is a `ValidationError`. */
function optionsObject<T extends object>(value: T | null | undefined, name: string): Partial<T> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null) throw new ValidationError([{ path: [], message: `${name} must be an object when given` }]);
  return value;
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

async function loadWorkspaces(
  tx: StoreTransaction,
  systemIds: readonly string[],
  flapping: FlappingConfig,
): Promise<Map<string, SystemWorkspace>> {
  const [states, maintenance] = await Promise.all([loadStates(tx, systemIds), tx.getMaintenance(systemIds)]);
  return buildWorkspaces(systemIds, states, maintenance, flapping);
}

/** Workspaces from states read (record lists) or cached (snapshots), and the systems' maintenance windows. */
function buildWorkspaces(
  systemIds: readonly string[],
  states: ReadonlyMap<string, SystemState>,
  maintenance: readonly MaintenanceRecord[],
  flapping: FlappingConfig,
  snapshots: ReadonlyMap<string, SystemSnapshot> = new Map(),
): Map<string, SystemWorkspace> {
  const windowsOf = systemIds.length === 1 ? new Map([[systemIds[0] as string, maintenance]]) : groupBySystem(maintenance);
  const options = { flapping };
  const workspaces = new Map<string, SystemWorkspace>();
  for (const systemId of systemIds) {
    const windows = windowsOf.get(systemId) ?? [];
    const snapshot = snapshots.get(systemId);
    workspaces.set(
      systemId,
      snapshot !== undefined
        ? SystemWorkspace.fromSnapshot(systemId, snapshot, windows, options)
        : new SystemWorkspace(systemId, { ...(states.get(systemId) as SystemState), maintenance: windows }, options),
    );
  }
  return workspaces;
}

/** The state (system, assignments, slices, entities) of each system, read with four loads issued together. */
async function loadStates(tx: StoreTransaction, systemIds: readonly string[]): Promise<Map<string, SystemState>> {
  const [systems, assignments, slices, entities] = await Promise.all([
    tx.getSystems(systemIds),
    tx.getAssignments(systemIds),
    tx.getSlices(systemIds),
    tx.getEntities(systemIds),
  ]);
  if (systemIds.length === 1) {
    // One system (every single call): every row read is its own, nothing to group.
    return new Map([[systemIds[0] as string, { system: systems[0], assignments, slices, entities }]]);
  }
  const [assignmentsOf, slicesOf, entitiesOf] = [groupBySystem(assignments), groupBySystem(slices), groupBySystem(entities)];
  const systemOf = new Map(systems.map((system) => [system.systemId, system]));
  return new Map(
    systemIds.map((systemId) => [
      systemId,
      {
        system: systemOf.get(systemId),
        assignments: assignmentsOf.get(systemId) ?? [],
        slices: slicesOf.get(systemId) ?? [],
        entities: entitiesOf.get(systemId) ?? [],
      },
    ]),
  );
}

function groupBySystem<T extends { readonly systemId: string }>(records: readonly T[]): Map<string, T[]> {
  const grouped = new Map<string, T[]>();
  for (const record of records) {
    const list = grouped.get(record.systemId);
    if (list === undefined) grouped.set(record.systemId, [record]);
    else list.push(record);
  }
  return grouped;
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
  const maintenance = all.flatMap((changes) => changes.maintenance);
  if (maintenance.length > 0) await tx.putMaintenance(maintenance);
}

/**
 * Adds accepted runs to their slices' hourly buckets in the same transaction, with one store call
 * for the whole batch. The store merges each delta into the stored bucket atomically, so no run is
 * lost to a concurrent writer and no bucket is read first.
 */
async function addToBuckets(tx: StoreTransaction, runs: readonly StoredRun[]): Promise<void> {
  if (runs.length === 0) return;
  const deltas = new Map<string, RunBucket>();
  for (const run of runs) {
    const key: BucketKey = {
      systemId: run.systemId,
      checkId: run.checkId,
      environmentId: run.environmentId,
      granularity: "hour",
      start: bucketStart(run.timestamp, "hour"),
    };
    const id = bucketId(key);
    deltas.set(id, addRuns(deltas.get(id) ?? emptyBucket(key), [run]));
  }
  await tx.addToBuckets([...deltas.values()]);
}

/** A collision-free id of a bucket key: the ids are length-prefixed, `-` marks the env-less slice. */
function bucketId(key: BucketKey): string {
  const environment = key.environmentId === null ? "-" : `${key.environmentId.length}:${key.environmentId}`;
  return `${key.systemId.length}:${key.systemId}${key.checkId.length}:${key.checkId}${environment}${key.granularity}${key.start}`;
}

/** The earliest time a `Date` holds (ECMAScript: 100,000,000 days before 1970). */
const EARLIEST_TIME_MS = -8.64e15;

/** A `limit` of `listTransitions` and `listDeadLetters`: how many at most. */
const limitSchema = z.number().int("must be an integer").min(1, "must be a positive integer");

/** Reads of an entity's buckets (`bucketsOf`) before one that keeps colliding with retention fails. */
const CONSISTENT_READ_ATTEMPTS = 10;

/** Whether two reads of the same buckets found the same ones with the same run counts. */
function sameRuns(a: readonly RunBucket[], b: readonly RunBucket[]): boolean {
  if (a.length !== b.length) return false;
  const runs = new Map(a.map((bucket) => [bucketId(bucket), bucket.runs]));
  return b.every((bucket) => runs.get(bucketId(bucket)) === bucket.runs);
}

/** The workspaces of one unit of work, and the state version each system had when read. */
interface CachedLoad {
  readonly workspaces: Map<string, SystemWorkspace>;
  readonly versions: ReadonlyMap<string, string>;
}

/**
 * The committed state (system, assignments, slices, entities) of the systems an engine's runs
 * went to, keyed by system, each with its state version: the one its commit gave it when it wrote
 * the state, the one it read when it did not. Used only with a store that
 * has state versions (`StoreTransaction.getStateVersions`); every other store is read in full.
 *
 * Under the system's lock, a unit of work reads the versions (with the maintenance windows, which
 * are never cached, and the run-id check: one round trip on Postgres) and reads the rows only of
 * the systems whose version is not the cached one: any commit by anyone else that wrote a
 * system's state gave it another version. With nothing cached for any of the systems, everything
 * is read in the first round. The cached snapshots are never changed (the kernel replaces records,
 * it does not edit them, and a workspace made from a snapshot copies a map before its first
 * change), and the cache is only updated after a commit, from the workspaces that were committed. A failed unit of work changes nothing here: if it rolled back, the stored
 * version is still the cached one and so is the state; if its COMMIT's outcome is unknown and it
 * did commit, the stored version is its own, which the cache does not hold, so the rows are read.
 */
class StateCache {
  private readonly entries = new Map<string, { readonly version: string; readonly snapshot: SystemSnapshot }>();

  /** @param capacity systems kept at most (`stateCacheSystems`), least recently used ones evicted first; 0 keeps none. */
  constructor(private readonly capacity: number) {}

  async load(tx: StoreTransaction, systemIds: readonly string[], flapping: FlappingConfig): Promise<CachedLoad> {
    const getVersions = tx.getStateVersions?.bind(tx);
    if (getVersions === undefined) return { workspaces: await loadWorkspaces(tx, systemIds, flapping), versions: new Map() };
    if (!systemIds.some((systemId) => this.entries.has(systemId))) {
      const [workspaces, versions] = await Promise.all([loadWorkspaces(tx, systemIds, flapping), getVersions(systemIds)]);
      return { workspaces, versions: new Map(versions.map((row) => [row.systemId, row.version])) };
    }
    const [versionRows, maintenance] = await Promise.all([getVersions(systemIds), tx.getMaintenance(systemIds)]);
    const versions = new Map(versionRows.map((row) => [row.systemId, row.version]));
    const misses: string[] = [];
    const hits = new Map<string, SystemSnapshot>();
    for (const systemId of systemIds) {
      const entry = this.entries.get(systemId);
      const version = versions.get(systemId);
      if (entry !== undefined && version !== undefined && entry.version === version) {
        hits.set(systemId, entry.snapshot);
        // Most recently used last.
        this.entries.delete(systemId);
        this.entries.set(systemId, entry);
      } else misses.push(systemId);
    }
    const states = misses.length === 0 ? new Map<string, SystemState>() : await loadStates(tx, misses);
    return { workspaces: buildWorkspaces(systemIds, states, maintenance, flapping, hits), versions };
  }

  /** After the unit of work that read `loaded` through `tx` committed. */
  committed(tx: StoreTransaction, loaded: CachedLoad): void {
    if (tx.getStateVersions === undefined || this.capacity === 0) return;
    for (const [systemId, workspace] of loaded.workspaces) {
      const version = workspace.stateChanged() ? tx.stateVersion : loaded.versions.get(systemId);
      this.entries.delete(systemId);
      if (version === undefined) continue;
      this.entries.set(systemId, { version, snapshot: workspace.snapshot() });
    }
    this.evict();
  }

  /**
   * After a unit of work that read its systems in full and changed their topology committed
   * (`applyTopology`, `upsertSystem`, `assignCheck`, `unassignCheck`): keeps the state of each
   * system it wrote, at its version, so the first run after a topology change reads no rows. A
   * system it did not write keeps its entry (still valid or not, its version says); a deleted
   * system loses it.
   */
  written(tx: StoreTransaction, workspaces: Iterable<SystemWorkspace>): void {
    const version = tx.stateVersion;
    if (tx.getStateVersions === undefined || version === undefined || this.capacity === 0) return;
    for (const workspace of workspaces) {
      if (!workspace.stateChanged()) continue;
      this.entries.delete(workspace.systemId);
      if (workspace.getSystem() === undefined) continue;
      this.entries.set(workspace.systemId, { version, snapshot: workspace.snapshot() });
    }
    this.evict();
  }

  /** Least recently used first, down to the capacity. */
  private evict(): void {
    for (const systemId of this.entries.keys()) {
      if (this.entries.size <= this.capacity) break;
      this.entries.delete(systemId);
    }
  }
}

/** Most single calls on one system folded into one unit of work (the rest wait for the next one). */
const MAX_SINGLE_GROUP_SIZE = 64;

/** Hourly buckets rolled into daily ones per transaction. */
const ROLL_CHUNK = 500;

/**
 * Rolls up to `ROLL_CHUNK` of a system's hourly buckets that start before `before` into their
 * days' buckets and deletes them, in the caller's transaction: an hour is either hourly or part of
 * its day, never both, so a crash or a second run cannot count it twice. Returns how many hours
 * were rolled.
 */
async function rollHourly(tx: StoreTransaction, systemId: string, before: Date): Promise<number> {
  const hours = await tx.listBucketsBefore({ systemIds: [systemId], granularity: "hour", before, limit: ROLL_CHUNK });
  if (hours.length === 0) return 0;
  const days = new Map<string, { key: BucketKey; hours: RunBucket[] }>();
  for (const hour of hours) {
    const key: BucketKey = { ...pickSlice(hour), granularity: "day", start: bucketStart(hour.start, "day") };
    const id = bucketId(key);
    const group = days.get(id);
    if (group === undefined) days.set(id, { key, hours: [hour] });
    else group.hours.push(hour);
  }
  await tx.addToBuckets([...days.values()].map((day) => mergeBuckets(day.key, day.hours)));
  await tx.deleteBuckets(hours);
  return hours.length;
}

function pickSlice(bucket: RunBucket): { systemId: string; checkId: string; environmentId: string | null } {
  return { systemId: bucket.systemId, checkId: bucket.checkId, environmentId: bucket.environmentId };
}

function parseRangeQuery(query: TimeRangeQuery): {
  entityId: string;
  ref: { systemId: string; environmentId: string | null };
  from: Date;
  to: Date;
} {
  const { entityId: id, from, to } = readInput(() => ({ entityId: query?.entityId, from: query?.from, to: query?.to }));
  const entityId = parseEntityId(id, ["entityId"]);
  const range = parse(timeRangeSchema, { from, to });
  return { entityId, ref: parseHealthEntityId(entityId)._unsafeUnwrap(), from: range.from, to: range.to };
}
