import { z } from "zod";
import type { ConfigurationIssue } from "../errors";
import { flappingOverrideIssues, type FlappingConfig } from "../flapping";
import { HEALTH_STATUSES } from "../status";
import { thresholdsSchema } from "../thresholds";
import { timeSchema } from "../time";
import { parseHealthEntityId } from "../ids";
import { idSchema, isWellFormedText } from "./ids";
import { isRecord } from "./issues";

/** Longest accepted run `message`, in UTF-16 code units. */
export const MAX_MESSAGE_LENGTH = 16_384;

const uniqueIds = (what: string) =>
  z.array(idSchema).superRefine((ids, ctx) => {
    const seen = new Set<string>();
    ids.forEach((id, index) => {
      if (seen.has(id)) ctx.addIssue({ code: "custom", path: [index], message: `duplicate ${what} ${JSON.stringify(id)}` });
      seen.add(id);
    });
  });

/** Zod schema of one `RunInput` (SPEC §13). Unknown keys are rejected. */
export const runInputSchema = z.strictObject({
  runId: idSchema.optional(),
  systemId: idSchema,
  checkId: idSchema,
  environmentId: idSchema.nullable().optional(),
  status: z.enum(HEALTH_STATUSES, { message: `must be one of ${HEALTH_STATUSES.join(", ")}` }),
  latencyMs: z
    .number({ message: "must be a number" })
    .refine(Number.isFinite, "must be finite")
    .refine((value) => value >= 0, "must be at least 0")
    .optional(),
  timestamp: timeSchema.optional(),
  message: z
    .string()
    .max(MAX_MESSAGE_LENGTH, `must be at most ${MAX_MESSAGE_LENGTH} characters`)
    .refine((value) => !value.includes("\u0000"), "must not contain NUL characters")
    .refine(isWellFormedText, "must be well-formed Unicode")
    .optional(),
});

/** One health-check result, as passed to `recordRun` (SPEC §15). */
export type RunInput = z.input<typeof runInputSchema>;
/** A validated `RunInput`: `timestamp` is a `Date`. */
export type ValidRun = z.output<typeof runInputSchema>;

/** Zod schema of `upsertSystem`'s input. */
export const upsertSystemSchema = z.strictObject({
  systemId: idSchema,
  environmentIds: uniqueIds("environment id"),
});
export type UpsertSystemInput = z.input<typeof upsertSystemSchema>;

const percentSchema = z.number({ message: "must be a number" }).min(0).max(100);
const isPercent = (value: unknown): value is number => typeof value === "number" && value >= 0 && value <= 100;

/**
 * Zod schema of a per-assignment flap override (SPEC §10): any of `enabled`, `low`, `high`
 * (percent state changes in [0, 100]); unknown keys are rejected. When both thresholds are given,
 * `low < high`; with one given, the engine checks it against its own settings when the assignment
 * is written (`flappingOverrideIssues`).
 */
export const flappingOverrideSchema = z
  .strictObject({
    enabled: z.boolean().optional(),
    low: percentSchema.optional(),
    high: percentSchema.optional(),
  })
  // zod also runs this after the fields' own issues: only a pair of valid percents is compared.
  .refine(({ low, high }) => !isPercent(low) || !isPercent(high) || low < high, {
    path: ["high"],
    message: "must be greater than low",
  });

const optionalOverrideSchema = flappingOverrideSchema.nullable().optional();

/**
 * `flappingOverrideIssues` of an input's own `flapping` override when that override is valid,
 * whatever else in the input is not, with paths from the input's root. For reporting every
 * problem at once (SPEC §13) when the input fails its schema elsewhere; an input that passes its
 * schema is checked on its parsed copy instead.
 */
export function inputFlappingIssues(global: FlappingConfig, input: unknown, path: readonly (string | number)[] = []): ConfigurationIssue[] {
  const parsed = optionalOverrideSchema.safeParse(isRecord(input) ? input.flapping : undefined);
  if (!parsed.success) return [];
  return flappingOverrideIssues(global, parsed.data).map((issue) => ({ ...issue, path: [...path, "flapping", ...issue.path] }));
}

/** `inputFlappingIssues` of every check of a topology document, however malformed the rest of it. */
export function topologyInputFlappingIssues(global: FlappingConfig, input: unknown): ConfigurationIssue[] {
  const systems = isRecord(input) ? input.systems : undefined;
  if (!Array.isArray(systems)) return [];
  return systems.flatMap((system: unknown, systemIndex) => {
    const checks = isRecord(system) ? system.checks : undefined;
    if (!Array.isArray(checks)) return [];
    return checks.flatMap((check: unknown, checkIndex) => inputFlappingIssues(global, check, ["systems", systemIndex, "checks", checkIndex]));
  });
}

const checkShape = {
  checkId: idSchema,
  thresholds: thresholdsSchema.optional(),
  environmentIds: uniqueIds("environment id").nullable().optional(),
  enabled: z.boolean().optional(),
  paused: z.boolean().optional(),
  /**
   * Override of the engine's flap settings for this assignment (SPEC §10): any of `enabled`, `low`,
   * `high`, the others inherited; `null` removes it. Omitted: no override (in a document, or when
   * creating an assignment), or the current one kept (updating with `assignCheck`).
   */
  flapping: flappingOverrideSchema.nullable().optional(),
};

/** Zod schema of `assignCheck`'s input. */
export const assignCheckSchema = z.strictObject({ systemId: idSchema, ...checkShape });
export type AssignCheckInput = z.input<typeof assignCheckSchema>;

/** Zod schema of `unassignCheck`'s input. */
export const unassignCheckSchema = z.strictObject({ systemId: idSchema, checkId: idSchema });
export type UnassignCheckInput = z.input<typeof unassignCheckSchema>;

/** Zod schema of a declarative topology document (SPEC §13). */
export const topologyDocSchema = z.strictObject({
  systems: z
    .array(
      z.strictObject({
        systemId: idSchema,
        environmentIds: uniqueIds("environment id"),
        checks: z.array(z.strictObject(checkShape)).superRefine((checks, ctx) => {
          const seen = new Set<string>();
          checks.forEach((check, index) => {
            if (seen.has(check.checkId)) {
              ctx.addIssue({ code: "custom", path: [index, "checkId"], message: `duplicate check id ${JSON.stringify(check.checkId)}` });
            }
            seen.add(check.checkId);
          });
        }),
      }),
    )
    .superRefine((systems, ctx) => {
      const seen = new Set<string>();
      systems.forEach((system, index) => {
        if (seen.has(system.systemId)) {
          ctx.addIssue({ code: "custom", path: [index, "systemId"], message: `duplicate system id ${JSON.stringify(system.systemId)}` });
        }
        seen.add(system.systemId);
      });
    }),
});
/** A declarative topology document, as passed to `applyTopology`. */
export type TopologyDoc = z.input<typeof topologyDocSchema>;
export type ValidTopologyDoc = z.output<typeof topologyDocSchema>;

/** Options of `applyTopology`. `prune: true` removes systems and checks absent from the document. */
export const applyTopologyOptionsSchema = z.strictObject({ prune: z.boolean().optional() });

/** Zod schema of the retention configuration (SPEC §9, §13), with defaults 7 / 30 / 365 days. */
export const retentionSchema = z
  .strictObject({
    rawRetentionDays: z.number().int("must be an integer").min(1).max(30).default(7),
    hourlyRetentionDays: z.number().int("must be an integer").min(7).max(90).default(30),
    dailyRetentionDays: z.number().int("must be an integer").min(30).max(1095).default(365),
  })
  .superRefine((value, ctx) => {
    if (value.rawRetentionDays >= value.hourlyRetentionDays) {
      ctx.addIssue({ code: "custom", path: ["rawRetentionDays"], message: "must be less than hourlyRetentionDays" });
    }
    if (value.hourlyRetentionDays >= value.dailyRetentionDays) {
      ctx.addIssue({ code: "custom", path: ["hourlyRetentionDays"], message: "must be less than dailyRetentionDays" });
    }
  });
export type RetentionConfig = z.output<typeof retentionSchema>;
export type RetentionInput = z.input<typeof retentionSchema>;

/** A half-open time range `[from, to)`; empty or inverted ranges are rejected. */
export const timeRangeSchema = z
  .object({ from: timeSchema, to: timeSchema })
  .refine((range) => range.from.getTime() < range.to.getTime(), {
    path: ["to"],
    message: "must be after from (ranges are half-open [from, to) and may not be empty)",
  });

/** Zod schema of `subscribe`'s options. */
export const subscribeOptionsSchema = z.strictObject({
  group: idSchema,
  from: z.enum(["oldest", "now"]).optional(),
});
export type SubscribeOptions = z.input<typeof subscribeOptionsSchema>;

/** Longest accepted maintenance `reason`. */
export const MAX_REASON_LENGTH = 1_024;

/** Zod schema of `addMaintenance`'s input; `start` must be before `end`. */
export const addMaintenanceSchema = z
  .strictObject({
    entityId: z.string(),
    start: timeSchema,
    end: timeSchema,
    reason: z
      .string()
      .max(MAX_REASON_LENGTH, `must be at most ${MAX_REASON_LENGTH} characters`)
      .refine((value) => !value.includes("\u0000"), "must not contain NUL characters")
      .refine(isWellFormedText, "must be well-formed Unicode")
      .optional(),
  })
  .superRefine((value, ctx) => {
    const parsed = parseHealthEntityId(value.entityId);
    if (parsed.isErr()) {
      for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", path: ["entityId"], message: issue.message });
    }
    if (value.start.getTime() >= value.end.getTime()) {
      ctx.addIssue({ code: "custom", path: ["end"], message: "must be after start" });
    }
  });

/** Zod schema of `endMaintenance`'s input. */
export const endMaintenanceSchema = z.strictObject({ maintenanceId: idSchema, at: timeSchema.optional() });

/** Zod schema of `deleteMaintenance`'s input. */
export const maintenanceIdSchema = z.strictObject({ maintenanceId: idSchema });

/** Zod schema of flap detection settings (SPEC §10), with the defaults enabled / 20 / 30. */
export const flappingSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    low: z.number().min(0).max(100).default(20),
    high: z.number().min(0).max(100).default(30),
  })
  .refine((flapping) => flapping.low < flapping.high, { path: ["high"], message: "must be greater than low" });
