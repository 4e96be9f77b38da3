// Deferred writes of one transaction, combined into as few statements as their tables allow.
//
// A unit of work writes up to nine tables (runs, slices, entities, buckets, transitions, …), one
// statement each; each statement is a round trip (about 0.4 ms on loopback here, more than most of
// these statements take to execute). Writes return nothing to the engine, so the transaction
// defers them until something must observe the database (a read, your own SQL, or COMMIT) and
// then sends consecutive writes on distinct tables as one statement of data-modifying CTEs:
// `WITH w0 AS (INSERT …), w1 AS (INSERT …) SELECT 1`. Every sub-statement of such a statement
// runs against the same snapshot and none sees another's effects, which is exactly the
// semantics of separate statements on tables that do not depend on each other (the schema has no
// foreign keys or triggers); a second write to a table already in the statement starts a new
// one, so a write always sees the earlier writes to its own table.

/** One deferred write: a single statement with `$1…$n` parameters. */
export interface PendingWrite {
  /**
   * The one table it modifies, or `null` for a statement that cannot be nested in a `WITH` (one
   * that has its own `WITH` or a side effect in a `SELECT`): it is sent on its own.
   */
  readonly table: string | null;
  readonly text: string;
  readonly params: readonly unknown[];
  /**
   * Its plan cannot depend on what the tables hold (rows come from parameters, conflicts go to a
   * unique index, no `WHERE` on a table), so a connection may keep it prepared with one generic
   * plan for good. A `DELETE … WHERE` is not: a plan made while its table was tiny would scan it
   * sequentially forever after.
   */
  readonly prepare?: boolean;
}

/** A statement ready to send. */
export interface Statement {
  readonly text: string;
  readonly params: unknown[];
  /** Every write in it may be kept prepared (`PendingWrite.prepare`). */
  readonly prepare: boolean;
}

/**
 * Combines writes, in order, into statements: a maximal run of consecutive combinable writes on
 * distinct tables becomes one `WITH` statement; anything else is sent as it is. The order of
 * statements is the order of the writes.
 */
export function combineWrites(writes: readonly PendingWrite[]): Statement[] {
  const statements: Statement[] = [];
  let group: PendingWrite[] = [];
  const close = () => {
    if (group.length === 1) statements.push(alone(group[0] as PendingWrite));
    else if (group.length > 1) statements.push(asOneStatement(group));
    group = [];
  };
  for (const write of writes) {
    if (write.table === null) {
      close();
      statements.push(alone(write));
      continue;
    }
    if (group.some((member) => member.table === write.table)) close();
    group.push(write);
  }
  close();
  return statements;
}

function alone(write: PendingWrite): Statement {
  return { text: write.text, params: [...write.params], prepare: write.prepare === true };
}

function asOneStatement(group: readonly PendingWrite[]): Statement {
  const params: unknown[] = [];
  const parts = group.map((write, index) => {
    const text = renumberParameters(write.text, params.length);
    params.push(...write.params);
    return `w${index} AS (${text})`;
  });
  return { text: `WITH ${parts.join(", ")} SELECT 1`, params, prepare: group.every((write) => write.prepare === true) };
}

/**
 * Shifts every `$n` parameter reference of `text` by `offset`. Only references outside quoted
 * identifiers (`"…"`, where a schema name may contain `$1`) and string literals (`'…'`) are
 * touched; the adapter's statements use neither dollar quoting nor comments with `$`.
 */
export function renumberParameters(text: string, offset: number): string {
  if (offset === 0) return text;
  return text
    .split(/("(?:[^"]|"")*"|'(?:[^']|'')*')/u)
    .map((part, index) => (index % 2 === 1 ? part : part.replace(/\$(\d+)/gu, (_, digits: string) => `$${Number(digits) + offset}`)))
    .join("");
}
