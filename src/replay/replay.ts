import type { HealthEntityState } from "../aggregate";
import { ValidationError, type ConfigurationIssue } from "../errors";
import type { HealthEvent } from "../events";
import { parseHealthEntityId } from "../ids";
import { SystemWorkspace, applySystemSpec, runRejection, type FlappingConfig, type StoredRun } from "../kernel";
import { toIso, timeSchema, type TimeInput } from "../time";
import {
  addMaintenanceSchema,
  flappingSchema,
  runInputSchema,
  readInput,
  toConfigurationIssues,
  topologyDocSchema,
  topologyInputFlappingIssues,
  type RunInput,
  type TopologyDoc,
} from "../validation";

/** Input of `replay`. */
export interface ReplayInput {
  /** The topology the runs are evaluated against, applied to an empty store first. */
  readonly topology: TopologyDoc;
  /** Runs in acceptance order, each as `recordRun` would receive it. */
  readonly runs: readonly RunInput[];
  readonly options?: {
    /**
     * "Now" for runs without a timestamp and for the topology application.
     * @default "1970-01-01T00:00:00.000Z", so that the output is a function of the input alone
     */
    readonly now?: TimeInput;
    /** Flap detection, as `createHealthEngine({ flapping })`. @default { enabled: true, low: 20, high: 30 } */
    readonly flapping?: Partial<FlappingConfig>;
    /**
     * Maintenance windows, as `addMaintenance` takes them. Their boundary events are emitted when
     * they are due at a run's timestamp (before that run is applied), and at `until`: as if the
     * engine's `tick` ran just before each run.
     */
    readonly maintenance?: readonly {
      readonly entityId: string;
      readonly start: TimeInput;
      readonly end: TimeInput;
      readonly reason?: string;
    }[];
    /** Process maintenance boundaries due at this time after the last run. */
    readonly until?: TimeInput;
  };
}

/** A run `replay` rejected, as `recordRun` would have: nothing of it was applied. */
export interface ReplayRejection {
  readonly index: number;
  readonly issues: readonly ConfigurationIssue[];
}

/** What `replay` returns. */
export interface ReplayResult {
  /** Every event the engine would have published, in publication order. */
  readonly transitions: HealthEvent[];
  /** Final state of every existing entity, by entity id. */
  readonly states: Record<string, HealthEntityState>;
  /** Runs that `recordRun` would have rejected (invalid, or not fitting the topology). */
  readonly rejected: ReplayRejection[];
  /** Indexes of runs whose `runId` was already accepted earlier in the stream. */
  readonly duplicates: number[];
}

/**
 * Replays runs against a topology, synchronously and without I/O, and returns exactly the events
 * and final states the engine would produce when given the same topology (`applyTopology` on an
 * empty store) and then each run through `recordRun`, in order. Use it to try thresholds on
 * recorded runs before rolling them out.
 *
 * Runs without `runId` get `replay-<index>`; runs without `timestamp` get `options.now`.
 *
 * @throws ValidationError when the topology document or `options.now` is invalid, including a
 * check's flap override whose thresholds merged with `options.flapping` are not `low < high`.
 */
export function replay(input: ReplayInput): ReplayResult {
  // Input that throws while it is read (a getter, a Proxy trap) is a ValidationError too.
  const { topology, now, flapping, windows, until } = readInput(() => validated(input));

  const nowIso = toIso(now);
  const workspaces = new Map<string, SystemWorkspace>();
  const transitions: HealthEvent[] = [];
  for (const spec of topology.systems) {
    const workspace = new SystemWorkspace(spec.systemId, {}, { flapping });
    workspaces.set(spec.systemId, workspace);
    applySystemSpec(workspace, spec, false);
    transitions.push(...workspace.applyTopologyChange(nowIso));
  }
  windows.forEach((window, index) => {
    if (window === undefined) return;
    const ref = parseHealthEntityId(window.entityId)._unsafeUnwrap();
    const workspace = workspaces.get(ref.systemId);
    if (workspace === undefined) {
      throw new ValidationError([{ path: ["options", "maintenance", index, "entityId"], message: `unknown system ${JSON.stringify(ref.systemId)}` }]);
    }
    workspace.putMaintenance({
      maintenanceId: `maintenance-${index}`,
      entityId: window.entityId,
      systemId: ref.systemId,
      environmentId: ref.environmentId,
      start: toIso(window.start),
      end: toIso(window.end),
      reason: window.reason ?? null,
      startedEntities: null,
      ended: false,
      createdAt: nowIso,
    });
  });
  const processBoundaries = (at: Date) => {
    for (const workspace of workspaces.values()) transitions.push(...workspace.processMaintenance(at, () => []));
  };

  const rejected: ReplayRejection[] = [];
  const duplicates: number[] = [];
  const accepted = new Set<string>();
  // By index, as recordRuns reads a batch: a hole is a missing run, and a slot that throws while
  // read is rejected at its index like any invalid run.
  const length = readInput(() => input.runs.length, ["runs"]);
  for (let index = 0; index < length; index += 1) {
    let parsed: ReturnType<typeof runInputSchema.safeParse>;
    try {
      parsed = readInput(() => runInputSchema.safeParse(input.runs[index]));
    } catch (error) {
      rejected.push({ index, issues: (error as ValidationError).issues });
      continue;
    }
    if (!parsed.success) {
      rejected.push({ index, issues: toConfigurationIssues(parsed.error.issues) });
      continue;
    }
    const run: StoredRun = {
      runId: parsed.data.runId ?? `replay-${index}`,
      systemId: parsed.data.systemId,
      checkId: parsed.data.checkId,
      environmentId: parsed.data.environmentId ?? null,
      status: parsed.data.status,
      latencyMs: parsed.data.latencyMs ?? null,
      timestamp: parsed.data.timestamp === undefined ? nowIso : toIso(parsed.data.timestamp),
      message: parsed.data.message ?? null,
      recordedAt: nowIso,
    };
    const workspace = workspaces.get(run.systemId);
    const rejection = runRejection(workspace?.getSystem(), workspace?.getAssignment(run.checkId), run);
    if (rejection !== undefined) {
      rejected.push({ index, issues: [{ path: [rejection.path], message: rejection.message }] });
      continue;
    }
    if (accepted.has(run.runId)) {
      duplicates.push(index);
      continue;
    }
    accepted.add(run.runId);
    if (windows.length > 0) processBoundaries(new Date(run.timestamp));
    // runRejection accepts only runs of a known system, so the workspace exists.
    transitions.push(...(workspace as SystemWorkspace).applyRun(run));
  }
  if (until !== undefined) processBoundaries(until);

  const states: Record<string, HealthEntityState> = {};
  for (const workspace of workspaces.values()) {
    for (const entity of workspace.listEntities()) if (entity.state !== null) states[entity.entityId] = entity.state;
  }
  return { transitions, states, rejected, duplicates };
}

/** The checked parts of `replay`'s input; every problem at once as one `ValidationError`. */
function validated(input: ReplayInput) {
  const topology = topologyDocSchema.safeParse(input?.topology);
  const issues: ConfigurationIssue[] = topology.success ? [] : toConfigurationIssues(topology.error.issues, ["topology"]);
  const nowInput = input?.options?.now ?? "1970-01-01T00:00:00.000Z";
  const now = timeSchema.safeParse(nowInput);
  if (!now.success) issues.push(...toConfigurationIssues(now.error.issues, ["options", "now"]));
  if (!Array.isArray(input?.runs)) issues.push({ path: ["runs"], message: "expected an array of runs" });
  const flapping = flappingSchema.safeParse(input?.options?.flapping ?? {});
  if (!flapping.success) issues.push(...toConfigurationIssues(flapping.error.issues, ["options", "flapping"]));
  const windows = (input?.options?.maintenance ?? []).map((window, index) => {
    const parsed = addMaintenanceSchema.safeParse(window);
    if (!parsed.success) issues.push(...toConfigurationIssues(parsed.error.issues, ["options", "maintenance", index]));
    return parsed.success ? parsed.data : undefined;
  });
  const until = input?.options?.until === undefined ? undefined : timeSchema.safeParse(input.options.until);
  if (until !== undefined && !until.success) issues.push(...toConfigurationIssues(until.error.issues, ["options", "until"]));
  if (flapping.success) {
    // Of the parsed document, or of one that failed its schema elsewhere (each override valid on its own).
    const overrideIssues = topologyInputFlappingIssues(flapping.data, topology.success ? topology.data : input?.topology);
    for (const issue of overrideIssues) issues.push({ ...issue, path: ["topology", ...issue.path] });
  }
  if (!topology.success || !now.success || !flapping.success || issues.length > 0) throw new ValidationError(issues);
  return { topology: topology.data, now: now.data, flapping: flapping.data, windows, until: until?.success === true ? until.data : undefined };
}
