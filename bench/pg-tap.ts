// Observes every statement the adapter sends through checked-out connections of a pg Pool, for the
// profiling scripts (bench/profile-pg.ts, bench/explain-pg.ts).
import type pg from "pg";

/** One statement: its text and parameters, whether sent plain (text, values) or prepared ({ name, text, values }). */
export interface TappedStatement {
  readonly text: string;
  readonly values: readonly unknown[];
}

/**
 * Calls `observe` for every statement sent on a connection checked out with `pool.connect()`,
 * with a `send` that runs it (so the observer may time it). Each pooled client is wrapped once,
 * however often it is checked out again. pg's own `pool.query` checks out with a callback:
 * those connections are left alone.
 */
export function tapPool(pool: pg.Pool, observe: (statement: TappedStatement, send: () => Promise<unknown>) => Promise<unknown>): void {
  const wrapped = new WeakSet<object>();
  const realConnect = pool.connect.bind(pool) as (...args: unknown[]) => unknown;
  const wrap = (client: pg.PoolClient): pg.PoolClient => {
    if (wrapped.has(client)) return client;
    wrapped.add(client);
    const original = client.query.bind(client) as (...args: unknown[]) => Promise<unknown>;
    (client as unknown as { query: unknown }).query = (...args: unknown[]) => {
      const [first, second] = args;
      const statement =
        typeof first === "string"
          ? { text: first, values: (second as unknown[] | undefined) ?? [] }
          : { text: (first as { text: string }).text, values: (first as { values?: unknown[] }).values ?? [] };
      return observe(statement, () => original(...args));
    };
    return client;
  };
  (pool as unknown as { connect: (...args: unknown[]) => unknown }).connect = (...args: unknown[]) =>
    args.length > 0 ? realConnect(...args) : (realConnect() as Promise<pg.PoolClient>).then(wrap);
}
