// Targets and the printed report (Markdown tables, pasted as is into docs/performance.md).
import type { BackendName } from "./backends";
import type { ExactlyOnceReport } from "./exactly-once";
import type { BenchConfig, Measured, ScaleResult } from "./scenarios";
import { summarize, type Summary } from "./stats";

export interface BackendResult {
  name: BackendName;
  info: Record<string, string>;
  errors: string[];
  seconds?: number;
  setupSeconds?: number;
  naiveSetupSeconds?: number;
  naiveCounts?: { runs: number; events: number };
  ingest?: Record<string, Measured>;
  read?: Record<string, Measured>;
  contention?: Record<string, Measured>;
  exactlyOnce?: ExactlyOnceReport;
  scale?: ScaleResult[];
}

export interface TargetResult {
  readonly target: string;
  readonly backend: BackendName;
  /** Median, with the min–max over repetitions when the value is a per-repetition ratio or rate. */
  readonly measured: Summary | undefined;
  readonly goal: string;
  /** `undefined` when it could not be measured. */
  readonly met: boolean | undefined;
  readonly note?: string;
}

/** Ratio of two variants measured in the same repetitions: one ratio per repetition. */
function pairedRatio(a: Measured | undefined, b: Measured | undefined): Summary | undefined {
  if (a === undefined || b === undefined) return undefined;
  const n = Math.min(a.summary.samples.length, b.summary.samples.length);
  if (n === 0) return undefined;
  return summarize(Array.from({ length: n }, (_, i) => (a.summary.samples[i] as number) / (b.summary.samples[i] as number)));
}

/** The better of the two naive variants, per repetition. */
function baselineOf(ingest: Record<string, Measured>): Measured | undefined {
  const c1 = ingest["naive baseline c=1"];
  const c16 = ingest["naive baseline c=16"];
  if (c1 === undefined || c16 === undefined) return c1 ?? c16;
  const n = Math.min(c1.summary.samples.length, c16.summary.samples.length);
  return { unit: "runs/s", summary: summarize(Array.from({ length: n }, (_, i) => Math.max(c1.summary.samples[i] as number, c16.summary.samples[i] as number))) };
}

const atLeast = (value: Summary | undefined, goal: number): boolean | undefined => (value === undefined ? undefined : value.median >= goal);

export function evaluateTargets(results: readonly BackendResult[]): TargetResult[] {
  const targets: TargetResult[] = [];
  for (const result of results) {
    const ingest = result.ingest ?? {};
    const backend = result.name;
    if (result.ingest === undefined) {
      // Not run: no ingest targets.
    } else if (backend === "memory") {
      const batch = ingest["batch 1000"]?.summary;
      targets.push({ target: "memory: recordRuns batches of 1,000", backend, measured: batch, goal: "≥ 500,000 runs/s", met: atLeast(batch, 500_000) });
      for (const variant of ["single c=1", "single c=16"]) {
        const single = ingest[variant]?.summary;
        targets.push({ target: `memory: single recordRun calls, ${variant.slice(7)}`, backend, measured: single, goal: "≥ 100,000 runs/s", met: atLeast(single, 100_000) });
      }
    } else {
      const ceiling = pairedRatio(ingest["batch 1000"], ingest["ceiling: raw upsert 1000"]);
      targets.push({
        target: `${backend}: recordRuns 1,000 ÷ raw upsert ceiling`,
        backend,
        measured: ceiling,
        goal: "≥ 0.3×",
        met: ceiling === undefined ? undefined : ceiling.median >= 0.3 && result.exactlyOnce?.ok === true,
        ...(backend === "pglite" ? { note: "informative (the targets name Postgres)" } : {}),
      });
      const baseline = baselineOf(ingest);
      const batched = pairedRatio(ingest["batch 1000"], baseline);
      targets.push({
        target: `${backend}: recordRuns 1,000 ÷ naive baseline`,
        backend,
        measured: batched,
        goal: "≥ 50×",
        met: atLeast(batched, 50),
        note: "baseline = the better of naive c=1 and c=16 in each repetition",
      });
      const single = pairedRatio(ingest["single c=16"], baseline);
      targets.push({ target: `${backend}: single calls c=16 ÷ naive baseline`, backend, measured: single, goal: "≥ 3×", met: atLeast(single, 3) });
    }
    const scale = result.scale ?? [];
    const smallest = scale[0];
    const largest = scale[scale.length - 1];
    for (const variant of scale.length < 2 ? [] : ["single c=1", "batch 1000"]) {
      const small = smallest?.measured[variant]?.summary;
      const large = largest?.measured[variant]?.summary;
      const growth = small === undefined || large === undefined || smallest === largest ? undefined : summarize([small.median / large.median]);
      targets.push({
        target: `${backend}: per-run cost ${largest?.entities.toLocaleString("en-US") ?? "?"} ÷ ${smallest?.entities.toLocaleString("en-US") ?? "?"} entities, ${variant}`,
        backend,
        measured: growth,
        goal: "≤ 1.5×",
        met: growth === undefined ? undefined : growth.median <= 1.5,
      });
    }
    if (result.exactlyOnce === undefined && !result.errors.some((error) => error.startsWith("contention"))) continue;
    targets.push({
      target: `${backend}: exactly-once under 16 writers on one system`,
      backend,
      measured: undefined,
      goal: "intact",
      met: result.exactlyOnce?.ok,
      ...(result.exactlyOnce === undefined
        ? {}
        : {
            note: `${result.exactlyOnce.events} events on ${result.exactlyOnce.entities} entities, ${result.exactlyOnce.delivered} delivered, ${result.exactlyOnce.runsCounted} runs counted${result.exactlyOnce.ok ? "" : `: ${result.exactlyOnce.problems[0] ?? ""}`}`,
          }),
    });
  }
  return targets;
}

const integer = (value: number): string => (Number.isFinite(value) ? Math.round(value).toLocaleString("en-US") : "–");
const decimal = (value: number, digits = 2): string => (Number.isFinite(value) ? value.toFixed(digits) : "–");
/** Rates: integers; small values keep two significant decimals. */
const rate = (value: number): string => (Math.abs(value) >= 100 ? integer(value) : decimal(value, value >= 10 ? 1 : 2));
const cell = (summary: Summary | undefined, format = rate): string =>
  summary === undefined
    ? "–"
    : summary.samples.length === 1
      ? format(summary.median)
      : `${format(summary.median)} (${format(summary.min)}–${format(summary.max)})`;

export function formatReport(output: {
  readonly meta: Record<string, unknown>;
  readonly config: BenchConfig;
  readonly results: readonly BackendResult[];
  readonly targets: readonly TargetResult[];
}): string {
  const { meta, config, results, targets } = output;
  const lines: string[] = [];
  const names = results.map((result) => result.name);
  lines.push(
    `Command: \`${String(meta.command)}\` · commit ${String(meta.commit)} · ${String(meta.date)} · Node ${String(meta.node)} · ${String(meta.cpu)} · ${String(meta.memoryGiB)} GiB · ${decimal(Number(meta.seconds), 0)} s`,
  );
  for (const result of results) {
    const info = Object.entries(result.info).map(([key, value]) => `${key} ${value}`).join(", ");
    if (info !== "") lines.push(`${result.name}: ${info}`);
  }
  lines.push(
    `Medians of ${config.repeats} repetitions (min–max), variants interleaved in each repetition; ${config.systems.toLocaleString("en-US")} systems × 3 environments × 5 checks; repetitions of ≥ ${config.repMs} ms.`,
  );
  lines.push("");
  lines.push(`| scenario | variant | ${names.join(" | ")} |`);
  lines.push(`|---|---|${names.map(() => "---:").join("|")}|`);
  const row = (scenario: string, variant: string, pick: (result: BackendResult) => string) => {
    lines.push(`| ${scenario} | ${variant} | ${results.map(pick).join(" | ")} |`);
  };
  const ingestVariants = [...new Set(results.flatMap((result) => Object.keys(result.ingest ?? {})))];
  for (const variant of ingestVariants) {
    const unit = results.map((result) => result.ingest?.[variant]?.unit).find((u) => u !== undefined) ?? "";
    row("1 ingest", `${variant} (${unit})`, (result) => cell(result.ingest?.[variant]?.summary));
  }
  row("2 contention", "16 writers, one system (runs/s)", (result) => cell(result.contention?.["16 writers, one system"]?.summary));
  for (const key of ["p50 ms", "p99 ms"]) {
    row("2 contention", `recordRun latency ${key}`, (result) => {
      const value = result.contention?.["16 writers, one system"]?.extra?.[key];
      return typeof value === "object" ? cell(value, (v) => decimal(v, v >= 10 ? 1 : 2)) : "–";
    });
  }
  row("2 contention", "exactly-once", (result) => (result.exactlyOnce === undefined ? "–" : result.exactlyOnce.ok ? `intact (${result.exactlyOnce.events} events)` : "**BROKEN**"));
  row("3 read", "getManyHealth 1,000 ids (calls/s)", (result) => cell(result.read?.["getManyHealth 1000 ids"]?.summary));
  row("3 read", "getManyHealth latency p50 ms", (result) => {
    const value = result.read?.["getManyHealth 1000 ids"]?.extra?.["p50 ms"];
    return typeof value === "object" ? cell(value, (v) => decimal(v, v >= 10 ? 1 : 2)) : "–";
  });

  const scaled = results.filter((result) => (result.scale ?? []).length > 0);
  if (scaled.length > 0) {
    lines.push("");
    lines.push(
      "Scale (scenario 5): a fresh store per size; batches of 250 systems × 4 runs at every size; the engine's state cache sized to every system of the store (`stateCacheSystems`, at least the default 10,000). RSS and heap of this process after a full GC (the memory adapter keeps every run: raw retention is 7 days); store MiB: the schema's tables and indexes.",
    );
    lines.push("");
    lines.push(
      "| backend | entities | setup s | single c=1 µs/run | batch 1000 µs/run | RSS MiB after setup → after ingest | heap MiB | heap bytes per run recorded | store MiB |",
    );
    lines.push("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (const result of scaled) {
      for (const size of result.scale ?? []) {
        const perRun = (variant: string) => {
          const summary = size.measured[variant]?.summary;
          // µs per run is the inverse of the rate: the slowest repetition gives the largest cost.
          return summary === undefined ? "–" : `${decimal(1e6 / summary.median, 1)} (${decimal(1e6 / summary.max, 1)}–${decimal(1e6 / summary.min, 1)})`;
        };
        lines.push(
          `| ${result.name} | ${size.entities.toLocaleString("en-US")} | ${decimal(size.setupSeconds, 1)} | ${perRun("single c=1")} | ${perRun("batch 1000")} | ${integer(size.afterSetup.rssMiB)} → ${integer(size.afterIngest.rssMiB)} | ${integer(size.afterSetup.heapUsedMiB)} → ${integer(size.afterIngest.heapUsedMiB)} | ${integer(((size.afterIngest.heapUsedMiB - size.afterSetup.heapUsedMiB) * 2 ** 20) / size.runsRecorded)} | ${size.storeMiB === undefined ? "–" : integer(size.storeMiB)} |`,
        );
      }
    }
  }

  lines.push("");
  lines.push("Targets (medians of per-repetition values, min–max):");
  lines.push("");
  lines.push("| target | measured | goal | met |");
  lines.push("|---|---:|---|---|");
  for (const target of targets) {
    const measured =
      target.measured === undefined
        ? "–"
        : target.goal.endsWith("×")
          ? cell(target.measured, (v) => `${decimal(v, v >= 10 ? 1 : 2)}×`)
          : cell(target.measured);
    const met = target.met === undefined ? "n/a" : target.met ? "yes" : "**no**";
    lines.push(`| ${target.target}${target.note === undefined ? "" : ` (${target.note})`} | ${measured} | ${target.goal} | ${met} |`);
  }
  const errors = results.flatMap((result) => result.errors.map((error) => `${result.name}: ${error}`));
  if (errors.length > 0) {
    lines.push("");
    lines.push("Errors:");
    for (const error of errors) lines.push(`- ${error}`);
  }
  return lines.join("\n");
}
