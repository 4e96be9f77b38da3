// The benchmark scenarios. Every scenario repeats its measurement `repeats` times, interleaving
// its variants inside each repetition, so that variants compared with each other ran under the
// same conditions (this machine is shared; its speed drifts).
import type { ResultAsync } from "neverthrow";
import type { HealthEngine, HealthError, HealthEvent, RunInput } from "healthstate";
import type { Backend, EngineEnv } from "./backends";
import { verifyExactlyOnce, type ExactlyOnceReport } from "./exactly-once";
import type { NaiveBaseline } from "./naive";
import { concurrentUntil, memorySnapshot, now, percentile, summarize, type Summary } from "./stats";
import { ENTITIES_PER_SYSTEM, ENVIRONMENTS, RunStream, entityIdOf, entityIdsOf, prng, systemIdOf, topologyOf } from "./workload";

export interface BenchConfig {
  readonly quick: boolean;
  readonly repeats: number;
  /** Minimum duration of one repetition of one variant. */
  readonly repMs: number;
  /** Systems of the ingest and read scenarios (×3 environments ×5 checks). */
  readonly systems: number;
  /** Entity counts of the scale scenario. */
  readonly scaleEntities: readonly number[];
  /** Systems the naive baseline runs on, and the history each of its slices starts with. */
  readonly naiveSystems: number;
  readonly naiveHistory: number;
}

/** One measured variant: per-repetition values and their summary. */
export interface Measured {
  readonly unit: string;
  readonly summary: Summary;
  readonly extra?: Record<string, Summary | number | string>;
}

/** The value of a `ResultAsync`, or its error thrown. */
const ok = async <T>(result: ResultAsync<T, HealthError>): Promise<T> => {
  const settled = await result;
  if (settled.isErr()) throw settled.error;
  return settled.value;
};

/** Applies the topology of `systems` systems in chunks (one unit of work each). */
export async function applyTopology(engine: HealthEngine, systems: number, prefix = "", chunk = 250): Promise<number> {
  const start = now();
  for (let from = 0; from < systems; from += chunk) {
    await ok(engine.applyTopology(topologyOf(from, Math.min(systems, from + chunk), prefix)));
  }
  return now() - start;
}

/** A variant of a repeated, interleaved measurement: one call measures one repetition. */
interface Variant {
  readonly name: string;
  readonly unit: string;
  /** Measures one repetition; returns the rate and optional per-repetition extras. */
  run(rep: number): Promise<{ rate: number; extra?: Record<string, number> }>;
}

async function interleave(repeats: number, variants: readonly Variant[], warmup?: () => Promise<void>): Promise<Record<string, Measured>> {
  if (warmup !== undefined) await warmup();
  const rates = new Map<string, number[]>();
  const extras = new Map<string, Map<string, number[]>>();
  for (let rep = 0; rep < repeats; rep += 1) {
    for (const variant of variants) {
      const { rate, extra } = await variant.run(rep);
      rates.set(variant.name, [...(rates.get(variant.name) ?? []), rate]);
      for (const [key, value] of Object.entries(extra ?? {})) {
        const byKey = extras.get(variant.name) ?? new Map<string, number[]>();
        byKey.set(key, [...(byKey.get(key) ?? []), value]);
        extras.set(variant.name, byKey);
      }
    }
  }
  return Object.fromEntries(
    variants.map((variant) => [
      variant.name,
      {
        unit: variant.unit,
        summary: summarize(rates.get(variant.name) ?? []),
        ...(extras.has(variant.name)
          ? { extra: Object.fromEntries([...(extras.get(variant.name) ?? new Map<string, number[]>())].map(([key, values]) => [key, summarize(values)])) }
          : {}),
      },
    ]),
  );
}

/** Batches of `size` from `next`, timed by the calls alone (generating runs is not counted). */
async function batchesFor(minMs: number, next: () => RunInput[], call: (runs: RunInput[]) => Promise<void>): Promise<number> {
  const start = now();
  let busy = 0;
  let runs = 0;
  while (now() - start < minMs || runs === 0) {
    const batch = next();
    const t = now();
    await call(batch);
    busy += now() - t;
    runs += batch.length;
  }
  return (runs / busy) * 1000;
}

/**
 * Scenario 1 (ingest, with the ceiling and the naive baseline interleaved on SQL backends):
 * single-run calls at concurrency 1 and 16, `recordRuns` batches of 100 and 1,000.
 */
export async function ingestScenario(
  config: BenchConfig,
  env: EngineEnv,
  stream: RunStream,
  sql: { readonly naive: NaiveBaseline; readonly naiveStream: RunStream } | undefined,
): Promise<Record<string, Measured>> {
  const { engine } = env;
  const record = async (run: RunInput) => {
    await ok(engine.recordRun(run));
  };
  const recordMany = async (runs: RunInput[]) => {
    await ok(engine.recordRuns(runs));
  };
  let lastBatchIds: string[][] = [];
  const variants: Variant[] = [
    {
      name: "single c=1",
      unit: "runs/s",
      run: async () => ({ rate: await batchesFor(config.repMs, () => [stream.next()], async ([run]) => record(run as RunInput)) }),
    },
    {
      name: "single c=16",
      unit: "runs/s",
      run: async () => ({ rate: (await concurrentUntil({ workers: 16, minMs: config.repMs, minUnits: 16 }, () => record(stream.next()))).rate }),
    },
    {
      name: "batch 100",
      unit: "runs/s",
      run: async () => ({ rate: await batchesFor(config.repMs, () => stream.take(100), recordMany) }),
    },
    {
      name: "batch 1000",
      unit: "runs/s",
      run: async () => {
        lastBatchIds = [];
        const rate = await batchesFor(
          config.repMs,
          () => stream.take(1000),
          async (runs) => {
            lastBatchIds.push(runs.map((run) => run.runId as string));
            await recordMany(runs);
          },
        );
        return { rate };
      },
    },
  ];
  if (sql !== undefined) {
    variants.push(
      {
        // The same run ids the engine's batches of 1,000 just recorded, upserted into a one-column table.
        name: "ceiling: raw upsert 1000",
        unit: "runs/s",
        run: async () => {
          const start = now();
          for (const ids of lastBatchIds) await sql.naive.upsertIds(ids);
          return { rate: (lastBatchIds.reduce((total, ids) => total + ids.length, 0) / (now() - start)) * 1000 };
        },
      },
      {
        name: "naive baseline c=1",
        unit: "runs/s",
        run: async () => ({ rate: (await concurrentUntil({ workers: 1, minMs: config.repMs, minUnits: 5 }, () => sql.naive.recordRun(sql.naiveStream.next()).then(() => undefined))).rate }),
      },
      {
        name: "naive baseline c=16",
        unit: "runs/s",
        run: async () => ({
          rate: (await concurrentUntil({ workers: 16, minMs: config.repMs, minUnits: 32 }, () => sql.naive.recordRun(sql.naiveStream.next()).then(() => undefined))).rate,
        }),
      },
    );
  }
  return interleave(config.repeats, variants, async () => {
    // Warm-up (JIT, caches, connections), not measured.
    await recordMany(stream.take(1000));
    for (let i = 0; i < 50; i += 1) await record(stream.next());
    if (sql !== undefined) {
      await sql.naive.upsertIds(stream.take(1000).map((run) => `warmup-${run.runId as string}`));
      for (let i = 0; i < 5; i += 1) await sql.naive.recordRun(sql.naiveStream.next());
    }
  });
}

/** Scenario 3: `getManyHealth` of 1,000 ids (a fixed random sample of the entities). */
export async function readScenario(config: BenchConfig, env: EngineEnv): Promise<Record<string, Measured>> {
  const all = entityIdsOf(config.systems);
  const random = prng(42);
  for (let i = all.length - 1; i > 0; i -= 1) {
    const j = Math.floor(random() * (i + 1));
    [all[i], all[j]] = [all[j] as string, all[i] as string];
  }
  const ids = all.slice(0, 1000);
  const read = async () => {
    const found = await ok(env.engine.getManyHealth(ids));
    if (Object.keys(found).length !== ids.length) throw new Error(`getManyHealth found ${Object.keys(found).length} of ${ids.length} entities`);
  };
  const measured = await interleave(
    config.repeats,
    [
      {
        name: "getManyHealth 1000 ids",
        unit: "calls/s",
        run: async () => {
          const result = await concurrentUntil({ workers: 1, minMs: config.repMs / 2, minUnits: 3 }, read);
          return { rate: result.rate, extra: { "p50 ms": percentile(result.latencies, 50) } };
        },
      },
    ],
    async () => {
      for (let i = 0; i < 3; i += 1) await read();
    },
  );
  return measured;
}

export interface ContentionResult {
  readonly measured: Record<string, Measured>;
  readonly exactlyOnce: ExactlyOnceReport;
}

/**
 * Scenario 2: 16 concurrent writers on one system (its 15 slices, its 4 entities), in a fresh
 * store, spread over four engines (on SQL backends each with its own adapter, as four processes
 * would be: only the database's advisory locks keep them apart); then every event is checked
 * (exactly once, chained, logged, delivered once, every run counted once).
 */
export async function contentionScenario(config: BenchConfig, env: EngineEnv): Promise<ContentionResult> {
  const { engine } = env;
  const systemId = `hot-${systemIdOf(0)}`;
  // One check in three environments: every run lands on an entity's only slice, so statuses (a
  // volatile stream) turn into many transitions and flapping events to check.
  await ok(engine.applyTopology({ systems: [{ systemId, environmentIds: [...ENVIRONMENTS], checks: [{ checkId: "http" }] }] }));
  // Four engines (as four processes would be) with four writers each.
  const engines = [engine, env.peer(), env.peer(), env.peer()];
  const stream = new RunStream({ systems: 1, seed: 99, prefix: "hot", systemPrefix: "hot-", volatile: true });
  const returned: HealthEvent[] = [];
  let accepted = 0;
  const write = async (worker: number) => {
    const run = { ...stream.next(), checkId: "http" };
    const outcome = await ok((engines[worker % engines.length] as HealthEngine).recordRun(run));
    returned.push(...outcome.events);
    if (!outcome.duplicate) accepted += 1;
  };
  const measured = await interleave(
    config.repeats,
    [
      {
        name: "16 writers, one system",
        unit: "runs/s",
        run: async () => {
          const result = await concurrentUntil({ workers: 16, minMs: config.repMs, minUnits: 64 }, write);
          return { rate: result.rate, extra: { "p50 ms": percentile(result.latencies, 50), "p99 ms": percentile(result.latencies, 99) } };
        },
      },
    ],
    async () => {
      for (let i = 0; i < 16; i += 1) await write(i);
    },
  );
  const exactlyOnce = await verifyExactlyOnce({
    engine,
    adapter: env.adapter,
    systemId,
    entityIds: [null, ...ENVIRONMENTS].map((environmentId) => entityIdOf(systemId, environmentId)),
    returned,
    acceptedRuns: accepted,
    from: new Date("2026-01-01T00:00:00.000Z"),
    to: new Date("2030-01-01T00:00:00.000Z"),
  });
  return { measured, exactlyOnce };
}

export interface ScaleResult {
  readonly entities: number;
  readonly systems: number;
  readonly setupSeconds: number;
  readonly measured: Record<string, Measured>;
  readonly afterSetup: { readonly rssMiB: number; readonly heapUsedMiB: number };
  readonly afterIngest: { readonly rssMiB: number; readonly heapUsedMiB: number };
  readonly storeMiB: number | undefined;
  readonly runsRecorded: number;
}

/**
 * Scenario 5: the same ingest at several sizes, in a fresh store each. Batches have the same
 * shape at every size (250 systems × 4 runs), so only the size of the store differs. The engine's
 * state cache (`stateCacheSystems`) is sized to hold every system of the store, as an operator
 * would size it for the systems one process writes: with the default (10,000 systems) a store of
 * 25,000 systems would mostly measure cache misses at 100,000 entities, a cost that grows with
 * how much of the fleet one process writes, not with the store (its heap is in the table).
 */
export async function scaleScenario(config: BenchConfig, backend: Backend, entities: number): Promise<ScaleResult> {
  const systems = Math.max(1, Math.round(entities / ENTITIES_PER_SYSTEM));
  const env = await backend.openEnv(`scale_${entities}`, { stateCacheSystems: Math.max(systems, 10_000) });
  try {
    const setupMs = await applyTopology(env.engine, systems, "", backend.name === "memory" ? 2_500 : 500);
    await env.settle();
    // The stream keeps a model per slice: created before the snapshot, so it is not counted as the store's growth.
    const stream = new RunStream({ systems, seed: 5, prefix: `scale${entities}` });
    const afterSetup = memorySnapshot();
    const measured = await interleave(
      config.repeats,
      [
        {
          name: "single c=1",
          unit: "runs/s",
          run: async () => ({
            rate: await batchesFor(config.repMs / 2, () => stream.spread(1, 1), async ([run]) => {
              await ok(env.engine.recordRun(run as RunInput));
            }),
          }),
        },
        {
          name: "batch 1000",
          unit: "runs/s",
          run: async () => ({
            rate: await batchesFor(config.repMs / 2, () => stream.spread(250, 4), async (runs) => {
              await ok(env.engine.recordRuns(runs));
            }),
          }),
        },
      ],
      async () => {
        await ok(env.engine.recordRuns(stream.spread(250, 4)));
        for (let i = 0; i < 20; i += 1) await ok(env.engine.recordRun(stream.spread(1, 1)[0] as RunInput));
      },
    );
    const afterIngest = memorySnapshot();
    const bytes = await env.storeBytes();
    return {
      entities,
      systems,
      setupSeconds: setupMs / 1000,
      measured,
      afterSetup,
      afterIngest,
      storeMiB: bytes === undefined ? undefined : bytes / 2 ** 20,
      runsRecorded: stream.produced,
    };
  } finally {
    await env.dispose();
  }
}
