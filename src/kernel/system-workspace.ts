import {
  aggregateRunEntities,
  aggregateSystem,
  effectiveSlices,
  isCounted,
  sameEntityState,
  type AssignmentRecord,
  type EntityView,
  type SystemRecord,
} from "../aggregate";
import { resolveEffectiveEnvironments } from "../environments";
import { eventIdOf, type HealthEvent, type HealthTransitionEvent } from "../events";
import {
  DEFAULT_FLAPPING,
  FLAP_HISTORY_LENGTH,
  isEmptyFlappingOverride,
  percentStateChangeOfLetters,
  resolveEntityFlapping,
  type FlappingConfig,
  type FlappingOverride,
} from "../flapping";
import type { HealthStatus } from "../status";
import { INITIAL_SLICE_STATE, reevaluateSlice, sameThresholds, stepSlice, type SliceState } from "../thresholds";
import { classifyTransition, deriveHealthTriggerEvents } from "../transitions";
import { coversEntity, statusBefore, withinWindow, type MaintenanceRecord } from "./maintenance";
import type { EntityRecord, HealthTransitionRecord, SliceKey, SliceRecord, StoredRun } from "./records";

const LETTER: Readonly<Record<HealthStatus, string>> = { healthy: "h", degraded: "d", unhealthy: "u" };

/** What caused an evaluation: a run, or a topology change (no run). */
export interface EvaluationCause {
  readonly runId?: string;
  readonly checkId?: string;
}

/** A system's state without its maintenance windows, as record lists (what a workspace is loaded from). */
export interface SystemState {
  readonly system: SystemRecord | undefined;
  readonly assignments: readonly AssignmentRecord[];
  readonly slices: readonly SliceRecord[];
  readonly entities: readonly EntityRecord[];
}

/** A system's slices of one check, by environment id (`null`: the env-less slice). */
export type CheckSlices = ReadonlyMap<string | null, SliceRecord>;

/**
 * A system's state as a workspace holds it, taken with `SystemWorkspace.snapshot` and shared,
 * read-only, by every workspace made from it with `SystemWorkspace.fromSnapshot`: a workspace
 * copies a map the first time it changes it, never before. Slices are by check id, then by
 * environment id; entities by environment id (`null`: the rollup), since all are the system's own.
 * Keyed by ids the records already hold, so the lookups of every run build no key strings.
 */
export interface SystemSnapshot {
  readonly system: SystemRecord | undefined;
  readonly assignments: ReadonlyMap<string, AssignmentRecord>;
  readonly slices: ReadonlyMap<string, CheckSlices>;
  readonly entities: ReadonlyMap<string | null, EntityRecord>;
}

/** Everything one workspace changed, for the store to persist in one unit of work. */
export interface WorkspaceChanges {
  readonly systemId: string;
  readonly system: SystemRecord | undefined;
  readonly systemDeleted: boolean;
  readonly assignments: AssignmentRecord[];
  readonly deletedAssignments: string[];
  readonly slices: SliceRecord[];
  readonly deletedSlices: SliceKey[];
  readonly entities: EntityRecord[];
  readonly transitions: HealthTransitionRecord[];
  readonly events: HealthEvent[];
  readonly maintenance: MaintenanceRecord[];
}

/**
 * The key of a slice in a workspace's change sets: the check id's length, the check id, then the
 * environment id after a `/` (nothing for the env-less slice). Collision-free for any strings,
 * since the length says where the check id ends.
 */
function sliceMapKey(checkId: string, environmentId: string | null): string {
  return environmentId === null ? `${checkId.length}:${checkId}` : `${checkId.length}:${checkId}/${environmentId}`;
}

/**
 * Why a run cannot be accepted for this topology, or `undefined` when it can (SPEC §4): the
 * system and the assignment must exist, and the run's environment must be one of the
 * assignment's effective environments (or absent when the check runs env-less).
 */
export function runRejection(
  system: SystemRecord | undefined,
  assignment: AssignmentRecord | undefined,
  run: { readonly systemId: string; readonly checkId: string; readonly environmentId: string | null },
): { path: string; message: string } | undefined {
  if (system === undefined) return { path: "systemId", message: `unknown system ${JSON.stringify(run.systemId)}` };
  if (assignment === undefined) {
    return { path: "checkId", message: `check ${JSON.stringify(run.checkId)} is not assigned to system ${JSON.stringify(run.systemId)}` };
  }
  const effective = resolveEffectiveEnvironments({ environmentIds: assignment.environmentIds, membership: system.environmentIds });
  if (effective.length === 0) {
    return run.environmentId === null
      ? undefined
      : { path: "environmentId", message: `check ${JSON.stringify(run.checkId)} runs env-less on system ${JSON.stringify(run.systemId)}; environment ${JSON.stringify(run.environmentId)} is not effective for it` };
  }
  if (run.environmentId === null) {
    return { path: "environmentId", message: `check ${JSON.stringify(run.checkId)} runs per environment (${effective.map((id) => JSON.stringify(id)).join(", ")}); a run needs one of them` };
  }
  return effective.includes(run.environmentId)
    ? undefined
    : { path: "environmentId", message: `environment ${JSON.stringify(run.environmentId)} is not effective for check ${JSON.stringify(run.checkId)} on system ${JSON.stringify(run.systemId)} (effective: ${effective.map((id) => JSON.stringify(id)).join(", ")})` };
}

/**
 * The in-memory working state of one system during one unit of work: topology, slices and
 * entities, loaded from the store, changed by runs and topology edits, and then written back.
 * Pure: no I/O, no clock. The engine and `replay` both drive it, so they cannot disagree.
 */
export class SystemWorkspace {
  private system: SystemRecord | undefined;
  // Read through these; change them only through `writable*()`, which copies a map still shared
  // with a snapshot first (see `SystemSnapshot` for the keys).
  private assignments = new Map<string, AssignmentRecord>();
  private slices = new Map<string, Map<string | null, SliceRecord>>();
  private entities = new Map<string | null, EntityRecord>();
  private sharedAssignments = false;
  private sharedSlices = false;
  private sharedEntities = false;
  /** The checks whose map of slices this workspace made (the others' are a snapshot's). */
  private readonly ownCheckSlices = new Set<string>();

  private systemDirty = false;
  private systemDeleted = false;
  /** Whether the topology changed since the entities were last evaluated (`applyTopologyChange`). */
  private topologyChanged = false;
  private readonly dirtyAssignments = new Set<string>();
  private readonly deletedAssignments = new Set<string>();
  /** Changed slices by `sliceMapKey`, each with its record as it now is. */
  private readonly dirtySlices = new Map<string, SliceRecord>();
  private readonly deletedSlices = new Map<string, SliceKey>();
  /** Environment ids (`null`: the rollup) of the changed entities. */
  private readonly dirtyEntities = new Set<string | null>();
  private readonly transitions: HealthTransitionRecord[] = [];
  private readonly events: HealthEvent[] = [];
  private readonly maintenance = new Map<string, MaintenanceRecord>();
  private readonly dirtyMaintenance = new Set<string>();
  private readonly flapping: FlappingConfig;
  /** A slice's evaluated status; a slice without runs reads as healthy. */
  private readonly sliceStatus = (checkId: string, environmentId: string | null): HealthStatus =>
    this.slices.get(checkId)?.get(environmentId)?.state.status ?? "healthy";

  constructor(
    readonly systemId: string,
    loaded: {
      readonly system?: SystemRecord | undefined;
      readonly assignments?: Iterable<AssignmentRecord>;
      readonly slices?: Iterable<SliceRecord>;
      readonly entities?: Iterable<EntityRecord>;
      readonly maintenance?: Iterable<MaintenanceRecord>;
    } = {},
    options: { readonly flapping?: FlappingConfig } = {},
  ) {
    this.system = loaded.system;
    this.flapping = options.flapping ?? DEFAULT_FLAPPING;
    for (const assignment of loaded.assignments ?? []) this.assignments.set(assignment.checkId, assignment);
    for (const slice of loaded.slices ?? []) this.writableSlicesOf(slice.checkId).set(slice.environmentId, slice);
    for (const entity of loaded.entities ?? []) this.entities.set(entity.environmentId, entity);
    for (const window of loaded.maintenance ?? []) this.maintenance.set(window.maintenanceId, window);
  }

  /**
   * A workspace over a snapshot of committed state (see `snapshot`) and the system's maintenance
   * windows: the same as one constructed from the snapshot's records, without building its maps.
   */
  static fromSnapshot(
    systemId: string,
    snapshot: SystemSnapshot,
    maintenance: Iterable<MaintenanceRecord>,
    options: { readonly flapping?: FlappingConfig } = {},
  ): SystemWorkspace {
    const workspace = new SystemWorkspace(systemId, { system: snapshot.system, maintenance }, options);
    // Never changed through these references: the first change copies (`writable*`).
    workspace.assignments = snapshot.assignments as Map<string, AssignmentRecord>;
    workspace.slices = snapshot.slices as Map<string, Map<string | null, SliceRecord>>;
    workspace.entities = snapshot.entities as Map<string | null, EntityRecord>;
    workspace.sharedAssignments = true;
    workspace.sharedSlices = true;
    workspace.sharedEntities = true;
    return workspace;
  }

  private writableAssignments(): Map<string, AssignmentRecord> {
    if (this.sharedAssignments) {
      this.assignments = new Map(this.assignments);
      this.sharedAssignments = false;
    }
    return this.assignments;
  }

  /** The slices of `checkId`, to change (an empty map, added, when it has none). */
  private writableSlicesOf(checkId: string): Map<string | null, SliceRecord> {
    if (this.sharedSlices) {
      this.slices = new Map(this.slices);
      this.sharedSlices = false;
    }
    const current = this.slices.get(checkId);
    if (current !== undefined && this.ownCheckSlices.has(checkId)) return current;
    const own = new Map(current);
    this.slices.set(checkId, own);
    this.ownCheckSlices.add(checkId);
    return own;
  }

  /** Stores a slice's new record and marks it for writing. */
  private putSlice(slice: SliceRecord): void {
    this.writableSlicesOf(slice.checkId).set(slice.environmentId, slice);
    const key = sliceMapKey(slice.checkId, slice.environmentId);
    this.dirtySlices.set(key, slice);
    this.deletedSlices.delete(key);
  }

  /** Removes a slice and marks it for deletion. */
  private removeSlice(slice: SliceRecord): void {
    const own = this.writableSlicesOf(slice.checkId);
    own.delete(slice.environmentId);
    // No empty maps kept: a workspace holds the same maps whether made from a snapshot or records.
    if (own.size === 0) {
      this.slices.delete(slice.checkId);
      this.ownCheckSlices.delete(slice.checkId);
    }
    const key = sliceMapKey(slice.checkId, slice.environmentId);
    this.dirtySlices.delete(key);
    this.deletedSlices.set(key, { systemId: slice.systemId, checkId: slice.checkId, environmentId: slice.environmentId });
  }

  /** The entity record with this id, if the workspace holds one (entities are by environment). */
  private entityById(entityId: string): EntityRecord | undefined {
    for (const record of this.entities.values()) if (record.entityId === entityId) return record;
    return undefined;
  }

  private writableEntities(): Map<string | null, EntityRecord> {
    if (this.sharedEntities) {
      this.entities = new Map(this.entities);
      this.sharedEntities = false;
    }
    return this.entities;
  }

  /** The system record, if the system exists. */
  getSystem(): SystemRecord | undefined {
    return this.system;
  }

  /** The assignment of `checkId`, if any. */
  getAssignment(checkId: string): AssignmentRecord | undefined {
    return this.assignments.get(checkId);
  }

  /** Every assignment of the system. */
  listAssignments(): AssignmentRecord[] {
    return [...this.assignments.values()];
  }

  /** Current state of every existing entity of the system. */
  listEntities(): EntityRecord[] {
    return [...this.entities.values()];
  }

  /** Sets the system's membership. Returns whether anything changed. */
  setSystem(system: SystemRecord): boolean {
    const before = this.system;
    if (before !== undefined && sameList(before.environmentIds, system.environmentIds)) return false;
    this.system = { systemId: system.systemId, environmentIds: [...system.environmentIds] };
    this.systemDirty = true;
    this.systemDeleted = false;
    this.topologyChanged = true;
    return true;
  }

  /** Removes the system and its assignments and slices; its entities become tombstones. */
  deleteSystem(): boolean {
    if (this.system === undefined) return false;
    for (const checkId of [...this.assignments.keys()]) this.deleteAssignment(checkId);
    this.system = undefined;
    this.systemDeleted = true;
    this.systemDirty = false;
    this.topologyChanged = true;
    return true;
  }

  /** Creates or updates an assignment; its slices are re-evaluated when the thresholds changed. */
  setAssignment(assignment: AssignmentRecord): boolean {
    const before = this.assignments.get(assignment.checkId);
    if (before !== undefined && sameAssignment(before, assignment)) return false;
    this.writableAssignments().set(assignment.checkId, assignment);
    this.dirtyAssignments.add(assignment.checkId);
    this.deletedAssignments.delete(assignment.checkId);
    this.topologyChanged = true;
    if (before !== undefined && !sameThresholds(before.thresholds, assignment.thresholds)) {
      for (const slice of [...(this.slices.get(assignment.checkId)?.values() ?? [])]) {
        this.putSlice({ ...slice, state: reevaluateSlice(slice.state, assignment.thresholds) });
      }
    }
    return true;
  }

  /** Removes an assignment and its slices. */
  deleteAssignment(checkId: string): boolean {
    if (!this.assignments.has(checkId)) return false;
    this.writableAssignments().delete(checkId);
    this.dirtyAssignments.delete(checkId);
    this.deletedAssignments.add(checkId);
    this.topologyChanged = true;
    // Its slices go with it, so a check assigned again starts from the baseline.
    this.pruneSlices();
    return true;
  }

  /**
   * Drops the slices no assignment evaluates any more (environment removed from the membership
   * or the selector, check unassigned), so that a slice that comes back starts from the baseline.
   */
  pruneSlices(): void {
    const system = this.system;
    const dead: SliceRecord[] = [];
    for (const [checkId, slices] of this.slices) {
      const assignment = this.assignments.get(checkId);
      const live = system === undefined || assignment === undefined ? [] : effectiveSlices(assignment, system);
      for (const slice of slices.values()) if (!live.includes(slice.environmentId)) dead.push(slice);
    }
    for (const slice of dead) this.removeSlice(slice);
  }

  /**
   * Applies an accepted run: steps its slice (SPEC §5) and re-evaluates the entities it touches
   * (its environment's entity and the rollup). The caller has checked `runRejection`.
   * @returns the events this run produced.
   */
  applyRun(run: StoredRun): HealthEvent[] {
    const assignment = this.assignments.get(run.checkId) as AssignmentRecord;
    // The check id as the assignment holds it: one string for every lookup of this check.
    const checkId = assignment.checkId;
    const previous = this.slices.get(checkId)?.get(run.environmentId)?.state ?? INITIAL_SLICE_STATE;
    const state: SliceState = stepSlice(previous, run.status, assignment.thresholds);
    // Frozen, as every record this workspace writes on a run: a store may keep it without a copy.
    this.putSlice(Object.freeze({ systemId: this.systemId, checkId, environmentId: run.environmentId, state: Object.freeze(state) }));
    const produced: HealthEvent[] = [];
    if (this.system === undefined) return produced;
    // Only the entities the run touches (the rollup and its environment's entity) are evaluated,
    // and aggregated again only when the slice's status changed (see `standingViews`).
    const views =
      state.status === previous.status && !this.topologyChanged
        ? this.standingViews(run.environmentId)
        : aggregateRunEntities(this.system, this.assignments.values(), this.sliceStatus, run.environmentId);
    const cause = { runId: run.runId, checkId: run.checkId };
    const flappingOf = this.entityFlapping();
    for (const view of views) {
      for (const event of this.updateEntity(view, cause, run.timestamp, flappingOf(view))) produced.push(event);
    }
    for (const event of produced) this.events.push(event);
    return produced;
  }

  /**
   * The entities a run of `environmentId` touches, as they stand: what `aggregateRunEntities`
   * returns when no slice status and nothing of the topology changed since they were evaluated.
   * Every entity's stored state is the aggregation (SPEC §6) of the slice statuses and topology
   * it was last evaluated with: a run re-evaluates the entities its slice feeds, a topology change
   * every entity (`topologyChanged` says one is pending), all in the unit of work that changed
   * them. So with the statuses unchanged, each stored state is the aggregation now, and a stored
   * entity exists exactly when the aggregation has it (no rollup: no counted check, no entity).
   * Most runs leave their slice's status as it was: this skips looking up every slice of the system.
   */
  private standingViews(environmentId: string | null): EntityView[] {
    const views: EntityView[] = [];
    const rollup = this.entities.get(null);
    if (rollup === undefined || rollup.state === null) return views;
    views.push({ entityId: rollup.entityId, systemId: rollup.systemId, environmentId: null, state: rollup.state });
    if (environmentId === null) return views;
    const entity = this.entities.get(environmentId);
    if (entity !== undefined && entity.state !== null) {
      views.push({ entityId: entity.entityId, systemId: entity.systemId, environmentId, state: entity.state });
    }
    return views;
  }

  /**
   * Re-evaluates every entity of the system after a topology change: creates entities that now
   * exist, tombstones those that no longer do, and emits a transition for each status change.
   */
  applyTopologyChange(occurredAt: string): HealthEvent[] {
    this.pruneSlices();
    return this.evaluate({}, occurredAt);
  }

  /** Evaluates every entity of the system; those that no longer exist become tombstones. */
  private evaluate(cause: EvaluationCause, occurredAt: string): HealthEvent[] {
    const views = this.system === undefined ? [] : aggregateSystem(this.system, this.assignments.values(), this.sliceStatus);
    const produced: HealthEvent[] = [];
    const present = new Set<string>();
    const flappingOf = this.entityFlapping();
    for (const view of views) {
      present.add(view.entityId);
      produced.push(...this.updateEntity(view, cause, occurredAt, flappingOf(view)));
    }
    for (const [environmentId, record] of this.entities) {
      if (present.has(record.entityId) || record.state === null) continue;
      this.writableEntities().set(environmentId, { ...record, state: null });
      this.dirtyEntities.add(environmentId);
    }
    this.events.push(...produced);
    this.topologyChanged = false;
    return produced;
  }

  /**
   * The flap settings of each entity (SPEC §10, `resolveEntityFlapping`): from the counted
   * assignments contributing to it, the engine's settings when no assignment has an override.
   */
  private entityFlapping(): (view: EntityView) => FlappingConfig {
    const global = this.flapping;
    const system = this.system;
    // The common case, checked without allocating: on the path of every run.
    let overridden = false;
    for (const assignment of this.assignments.values()) {
      if (isCounted(assignment) && !isEmptyFlappingOverride(assignment.flapping)) overridden = true;
    }
    if (system === undefined || !overridden) return () => global;
    const counted = [...this.assignments.values()].filter(isCounted);
    const slicesOf = new Map(counted.map((assignment) => [assignment, effectiveSlices(assignment, system)]));
    return (view) =>
      resolveEntityFlapping(
        global,
        view.environmentId === null ? counted : counted.filter((assignment) => slicesOf.get(assignment)?.includes(view.environmentId)),
      );
  }

  /**
   * One evaluation of an entity: stores its new state, appends it to the flap history, and returns
   * the events it causes, in sequence order: the transition (when the status changed), then
   * `flapping_started` or `flapping_stopped` (when the percent state change crossed a threshold,
   * with the entity's settings `flapping`).
   */
  private updateEntity(view: EntityView, cause: EvaluationCause, occurredAt: string, flapping: FlappingConfig): HealthEvent[] {
    const record = this.entities.get(view.environmentId);
    const previous = record?.state ?? null;
    const status = view.state.status;
    // A (re-)created entity starts a new life: fresh flap history.
    const history = previous === null ? "" : (record?.history ?? "");
    const wasFlapping = flapping.enabled && previous !== null && (record?.flappingFrom ?? null) !== null;
    const nextHistory = flapping.enabled ? (history + LETTER[status]).slice(-FLAP_HISTORY_LENGTH) : "";
    let flappingFrom: HealthStatus | null = wasFlapping ? (record?.flappingFrom ?? null) : null;
    let sequence = record?.sequence ?? 0;
    const base = { entityId: view.entityId, systemId: view.systemId, environmentId: view.environmentId, occurredAt };
    const events: HealthEvent[] = [];

    if (previous !== null && previous.status !== status) {
      sequence += 1;
      const event: HealthTransitionEvent = {
        type: "health.transition",
        eventId: eventIdOf(view.entityId, sequence),
        ...base,
        sequence,
        previousStatus: previous.status,
        newStatus: status,
        healthyChecks: view.state.healthyChecks,
        totalChecks: view.state.totalChecks,
        classification: classifyTransition(previous.status, status) as HealthTransitionEvent["classification"],
        triggers: deriveHealthTriggerEvents({ prev: previous, next: view.state }),
        cause: {
          ...(cause.runId === undefined ? {} : { runId: cause.runId }),
          ...(cause.checkId === undefined ? {} : { checkId: cause.checkId }),
        },
        ...(wasFlapping ? { flapping: true } : {}),
        ...(this.inMaintenance(view.entityId, occurredAt) ? { inMaintenance: true } : {}),
      };
      events.push(event);
      this.transitions.push({
        entityId: event.entityId,
        systemId: event.systemId,
        environmentId: event.environmentId,
        sequence,
        previousStatus: event.previousStatus,
        newStatus: event.newStatus,
        occurredAt,
        ...event.cause,
      });
    }

    if (flapping.enabled && previous !== null) {
      const percent = percentStateChangeOfLetters(nextHistory);
      if (!wasFlapping && percent >= flapping.high) {
        sequence += 1;
        events.push({
          type: "health.flapping_started",
          eventId: eventIdOf(view.entityId, sequence),
          ...base,
          sequence,
          percentStateChange: percent,
          status,
        });
        flappingFrom = status;
      } else if (wasFlapping && percent <= flapping.low) {
        sequence += 1;
        events.push({
          type: "health.flapping_stopped",
          eventId: eventIdOf(view.entityId, sequence),
          ...base,
          sequence,
          percentStateChange: percent,
          statusBefore: flappingFrom as HealthStatus,
          statusAfter: status,
        });
        flappingFrom = null;
      }
    }

    const unchanged =
      previous !== null &&
      sameEntityState(previous, view.state) &&
      sequence === record?.sequence &&
      nextHistory === (record.history ?? "") &&
      flappingFrom === (record.flappingFrom ?? null);
    if (!unchanged) {
      this.writableEntities().set(
        view.environmentId,
        Object.freeze({
          // The stored id when there is one: the same string, not an equal one built again.
          entityId: record?.entityId ?? view.entityId,
          systemId: view.systemId,
          environmentId: view.environmentId,
          state: Object.freeze(view.state),
          sequence,
          history: nextHistory,
          flappingFrom,
        }),
      );
      this.dirtyEntities.add(view.environmentId);
    }
    return events;
  }

  private inMaintenance(entityId: string, occurredAt: string): boolean {
    for (const window of this.maintenance.values()) {
      if (coversEntity(window, entityId, this.systemId) && withinWindow(window, occurredAt)) return true;
    }
    return false;
  }

  /** The maintenance windows of the system. */
  listMaintenance(): MaintenanceRecord[] {
    return [...this.maintenance.values()];
  }

  /** Adds or replaces a maintenance window (its boundaries are processed by `processMaintenance`). */
  putMaintenance(window: MaintenanceRecord): void {
    this.maintenance.set(window.maintenanceId, window);
    this.dirtyMaintenance.add(window.maintenanceId);
  }

  /**
   * Emits the maintenance boundary events due at `now` (SPEC §11), each once: for a window whose
   * start has come, `maintenance_started` for every existing entity it covers; for a window whose
   * end has come, `maintenance_ended` for the entities that got the start, with the status just
   * before the start and just before the end, read from each entity's transition log
   * (`transitionsOf`, in sequence order, including this workspace's own new transitions).
   */
  processMaintenance(now: Date, transitionsOf: (entityId: string) => readonly HealthTransitionRecord[]): HealthEvent[] {
    const produced: HealthEvent[] = [];
    const windows = [...this.maintenance.values()].sort(
      (a, b) => Date.parse(a.start) - Date.parse(b.start) || (a.maintenanceId < b.maintenanceId ? -1 : 1),
    );
    const logOf = (entityId: string) => [
      ...transitionsOf(entityId),
      ...this.transitions.filter((transition) => transition.entityId === entityId),
    ];
    for (let window of windows) {
      if (window.startedEntities === null && Date.parse(window.start) <= now.getTime()) {
        const covered = [...this.entities.values()]
          .filter((entity) => entity.state !== null && coversEntity(window, entity.entityId, this.systemId))
          .sort((a, b) => (a.entityId < b.entityId ? -1 : a.entityId > b.entityId ? 1 : 0));
        for (const entity of covered) {
          produced.push(
            this.boundaryEvent(entity.entityId, window.start, (sequence, base) => ({
              type: "health.maintenance_started",
              ...base,
              sequence,
              maintenanceId: window.maintenanceId,
              ...(window.reason === null ? {} : { reason: window.reason }),
              status: statusBefore(logOf(entity.entityId), window.start, entity.state?.status ?? "healthy"),
            })),
          );
        }
        window = { ...window, startedEntities: covered.map((entity) => entity.entityId) };
        this.putMaintenance(window);
      }
      if (window.startedEntities !== null && !window.ended && Date.parse(window.end) <= now.getTime()) {
        for (const entityId of window.startedEntities) {
          const entity = this.entityById(entityId);
          if (entity === undefined) continue;
          const log = logOf(entityId);
          const current = entity.state?.status ?? "healthy";
          produced.push(
            this.boundaryEvent(entityId, window.end, (sequence, base) => ({
              type: "health.maintenance_ended",
              ...base,
              sequence,
              maintenanceId: window.maintenanceId,
              statusBefore: statusBefore(log, window.start, current),
              statusAfter: statusBefore(log, window.end, current),
            })),
          );
        }
        this.putMaintenance({ ...window, ended: true });
      }
    }
    this.events.push(...produced);
    return produced;
  }

  private boundaryEvent(
    entityId: string,
    occurredAt: string,
    build: (
      sequence: number,
      base: { eventId: string; entityId: string; systemId: string; environmentId: string | null; occurredAt: string },
    ) => HealthEvent,
  ): HealthEvent {
    const record = this.entityById(entityId) as EntityRecord;
    const sequence = record.sequence + 1;
    this.writableEntities().set(record.environmentId, { ...record, sequence });
    this.dirtyEntities.add(record.environmentId);
    return build(sequence, {
      eventId: eventIdOf(entityId, sequence),
      entityId,
      systemId: record.systemId,
      environmentId: record.environmentId,
      occurredAt,
    });
  }

  /**
   * The system's state as it stands now (system record, assignments, slices, entities; not the
   * maintenance windows), for a cache of committed state: after the unit of work commits, this is
   * what the store holds for the system. Costs nothing: the snapshot shares the workspace's maps,
   * which neither it nor any workspace made from it changes in place again.
   */
  snapshot(): SystemSnapshot {
    // From now on the maps belong to the snapshot too: a later change here copies them first.
    this.sharedAssignments = true;
    this.sharedSlices = true;
    this.ownCheckSlices.clear();
    this.sharedEntities = true;
    return { system: this.system, assignments: this.assignments, slices: this.slices, entities: this.entities };
  }

  /** Whether this workspace changed any of the rows `snapshot()` covers (so persisting it writes them). */
  stateChanged(): boolean {
    return (
      this.systemDirty ||
      this.systemDeleted ||
      this.dirtyAssignments.size > 0 ||
      this.deletedAssignments.size > 0 ||
      this.dirtySlices.size > 0 ||
      this.deletedSlices.size > 0 ||
      this.dirtyEntities.size > 0
    );
  }

  /** Everything changed since the workspace was loaded. */
  changes(): WorkspaceChanges {
    return {
      systemId: this.systemId,
      system: this.systemDirty ? this.system : undefined,
      systemDeleted: this.systemDeleted,
      assignments: [...this.dirtyAssignments].map((checkId) => this.assignments.get(checkId) as AssignmentRecord),
      deletedAssignments: [...this.deletedAssignments],
      slices: [...this.dirtySlices.values()],
      deletedSlices: [...this.deletedSlices.values()],
      entities: [...this.dirtyEntities].map((environmentId) => this.entities.get(environmentId) as EntityRecord),
      transitions: [...this.transitions],
      events: [...this.events],
      maintenance: [...this.dirtyMaintenance].map((id) => this.maintenance.get(id) as MaintenanceRecord),
    };
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, index) => value === b[index]);
}

function sameAssignment(a: AssignmentRecord, b: AssignmentRecord): boolean {
  const selectorsEqual =
    a.environmentIds === null || b.environmentIds === null
      ? a.environmentIds === b.environmentIds
      : sameList(a.environmentIds, b.environmentIds);
  return (
    selectorsEqual &&
    a.enabled === b.enabled &&
    a.paused === b.paused &&
    sameThresholds(a.thresholds, b.thresholds) &&
    sameFlappingOverride(a.flapping, b.flapping)
  );
}

function sameFlappingOverride(a: FlappingOverride | undefined, b: FlappingOverride | undefined): boolean {
  if (isEmptyFlappingOverride(a) || isEmptyFlappingOverride(b)) return isEmptyFlappingOverride(a) && isEmptyFlappingOverride(b);
  return a?.enabled === b?.enabled && a?.low === b?.low && a?.high === b?.high;
}
