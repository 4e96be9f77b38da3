// Exactly-once checks for the contention scenario (SPEC §8 G1, G2, G4): every entity's events
// are numbered 1..n without gap or repeat and chained; the transition log holds exactly the
// transitions the calls returned; a subscriber receives each event once; the buckets count
// every accepted run once.
import type { HealthAdapter, HealthEngine, HealthEvent, HealthTransitionEvent } from "healthstate";

const isTransition = (event: HealthEvent): event is HealthTransitionEvent => event.type === "health.transition";

/** What one verification found. */
export interface ExactlyOnceReport {
  readonly ok: boolean;
  readonly problems: string[];
  readonly entities: number;
  readonly events: number;
  readonly transitions: number;
  readonly delivered: number;
  readonly runsCounted: number;
}

/**
 * Problems in the events of fresh entities (every chain must start at sequence 1): gaps,
 * repeats, and transitions whose previous status is not the newest status before them (the
 * healthy baseline for the first one).
 */
export function chainProblems(events: readonly HealthEvent[]): string[] {
  const problems: string[] = [];
  const byEntity = new Map<string, HealthEvent[]>();
  for (const event of events) {
    const list = byEntity.get(event.entityId);
    if (list === undefined) byEntity.set(event.entityId, [event]);
    else list.push(event);
  }
  for (const [entityId, list] of byEntity) {
    const sorted = [...list].sort((a, b) => a.sequence - b.sequence);
    sorted.forEach((event, index) => {
      if (event.sequence !== index + 1) {
        problems.push(`${entityId}: event #${index + 1} in sequence order has sequence ${event.sequence} (gap or repeat)`);
      }
      if (event.eventId !== `${entityId}#${event.sequence}`) problems.push(`${entityId}: eventId ${event.eventId} does not match its sequence`);
    });
    let status = "healthy";
    for (const event of sorted.filter(isTransition)) {
      if (event.previousStatus !== status) {
        problems.push(`${entityId}: transition ${event.sequence} goes from ${event.previousStatus}, but the entity was ${status}`);
      }
      status = event.newStatus;
    }
  }
  return problems;
}

/** The checker must catch a dropped, a repeated and a mis-chained event: a negative control. */
export function selfTest(): void {
  const base = { systemId: "s", environmentId: null, occurredAt: "2026-11-30T00:00:00.000Z", healthyChecks: 0, totalChecks: 1, triggers: [], cause: {} };
  const chain = (["degraded", "unhealthy", "healthy", "degraded"] as const).map(
    (newStatus, index, all): HealthEvent =>
      ({
        ...base,
        type: "health.transition",
        entityId: "s",
        eventId: `s#${index + 1}`,
        sequence: index + 1,
        previousStatus: index === 0 ? "healthy" : all[index - 1],
        newStatus,
        classification: "changed",
      }) as unknown as HealthEvent,
  );
  const expectProblems = (events: HealthEvent[], label: string, wanted: boolean) => {
    const found = chainProblems(events).length > 0;
    if (found !== wanted) throw new Error(`exactly-once checker self-test failed: ${label} ${wanted ? "not caught" : "flagged"}`);
  };
  expectProblems(chain, "valid chain", false);
  expectProblems([chain[0], chain[1], chain[3]] as HealthEvent[], "dropped event", true);
  expectProblems([...chain, chain[2]] as HealthEvent[], "repeated event", true);
  const swapped = chain.map((event, index) =>
    index === 2 ? ({ ...event, previousStatus: "healthy" } as unknown as HealthEvent) : event,
  );
  expectProblems(swapped, "broken chain", true);
}

/**
 * Verifies the events `returned` by every call on fresh entities `entityIds` of `systemId`
 * against the store and the outbox, once all writers are done. `acceptedRuns` were recorded
 * with timestamps in `[from, to)`.
 */
export async function verifyExactlyOnce(options: {
  readonly engine: HealthEngine;
  readonly adapter: HealthAdapter;
  readonly systemId: string;
  readonly entityIds: readonly string[];
  readonly returned: readonly HealthEvent[];
  readonly acceptedRuns: number;
  readonly from: Date;
  readonly to: Date;
}): Promise<ExactlyOnceReport> {
  const { engine, adapter, returned } = options;
  const problems = chainProblems(returned);

  // The transition log holds exactly the transitions returned, and the stored entity ends where
  // its chain ends.
  const records = await adapter.store.getEntitiesById(options.entityIds);
  for (const entityId of options.entityIds) {
    const mine = returned.filter((event) => event.entityId === entityId).sort((a, b) => a.sequence - b.sequence);
    const logged = await engine.listTransitions({ entityId });
    if (logged.isErr()) throw logged.error;
    const expected = mine.filter(isTransition).map((event) => `${event.sequence}:${event.previousStatus}>${event.newStatus}`);
    const actual = logged.value.map((entry) => `${entry.sequence}:${entry.previousStatus}>${entry.newStatus}`);
    if (expected.join(",") !== actual.join(",")) {
      problems.push(`${entityId}: the transition log (${actual.length} entries) differs from the ${expected.length} transitions returned`);
    }
    const record = records.find((candidate) => candidate.entityId === entityId);
    const last = mine[mine.length - 1];
    if (record === undefined) {
      problems.push(`${entityId}: no stored entity`);
      continue;
    }
    if (record.sequence !== (last?.sequence ?? 0)) problems.push(`${entityId}: stored sequence ${record.sequence}, newest event ${last?.sequence ?? 0}`);
    const lastTransition = mine.filter(isTransition).at(-1);
    if ((record.state?.status ?? "none") !== (lastTransition?.newStatus ?? "healthy")) {
      problems.push(`${entityId}: stored status ${record.state?.status ?? "none"}, newest transition to ${lastTransition?.newStatus ?? "healthy"}`);
    }
  }

  // A subscriber from the oldest event receives each event once.
  const delivered = new Map<string, number>();
  const subscription = engine.subscribe(
    (event) => {
      delivered.set(event.eventId, (delivered.get(event.eventId) ?? 0) + 1);
    },
    { group: "bench-exactly-once", from: "oldest" },
  );
  await engine.flush();
  await subscription.unsubscribe();
  const expectedIds = new Set(returned.map((event) => event.eventId));
  let deliveredCount = 0;
  for (const [eventId, count] of delivered) {
    deliveredCount += count;
    if (!expectedIds.has(eventId)) problems.push(`delivered ${eventId}, which no call returned`);
    if (count > 1) problems.push(`delivered ${eventId} ${count} times`);
  }
  for (const eventId of expectedIds) if (!delivered.has(eventId)) problems.push(`${eventId} was never delivered`);

  // No lost update: the hourly buckets count every accepted run once.
  const buckets = await adapter.store.queryBuckets({ systemId: options.systemId, granularity: "hour", from: options.from, to: options.to });
  const runsCounted = buckets.reduce((total, bucket) => total + bucket.runs, 0);
  if (runsCounted !== options.acceptedRuns) problems.push(`buckets count ${runsCounted} runs, ${options.acceptedRuns} were accepted`);

  return {
    ok: problems.length === 0,
    problems: problems.slice(0, 20),
    entities: options.entityIds.length,
    events: returned.length,
    transitions: returned.filter(isTransition).length,
    delivered: deliveredCount,
    runsCounted,
  };
}
