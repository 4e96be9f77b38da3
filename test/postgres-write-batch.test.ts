import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { combineWrites, renumberParameters, type PendingWrite } from "../adapters/postgres/write-batch";

const write = (table: string | null, text: string, ...params: unknown[]): PendingWrite => ({ table, text, params });

describe("combineWrites", () => {
  it("sends consecutive writes on distinct tables as one statement of CTEs, parameters renumbered in order", () => {
    const statements = combineWrites([
      write("runs", "INSERT INTO runs SELECT * FROM x($1::jsonb)", "r"),
      write("slices", "INSERT INTO slices SELECT $1, $2", "s1", "s2"),
      write("entities", "DELETE FROM entities WHERE id = ANY($1::text[])", "e"),
    ]);
    expect(statements).toEqual([
      {
        text: "WITH w0 AS (INSERT INTO runs SELECT * FROM x($1::jsonb)), w1 AS (INSERT INTO slices SELECT $2, $3), w2 AS (DELETE FROM entities WHERE id = ANY($4::text[])) SELECT 1",
        params: ["r", "s1", "s2", "e"],
      },
    ]);
  });

  it("starts a new statement at a second write to a table, and sends a write that cannot be nested on its own, in order", () => {
    const statements = combineWrites([
      write("slices", "DELETE FROM slices WHERE k = $1", 1),
      write("entities", "INSERT INTO entities VALUES ($1)", 2),
      write("slices", "INSERT INTO slices VALUES ($1)", 3),
      write(null, "WITH x AS (SELECT $1) SELECT pg_notify($2, '')", 4, "ch"),
      write("runs", "INSERT INTO runs VALUES ($1)", 5),
    ]);
    expect(statements).toEqual([
      { text: "WITH w0 AS (DELETE FROM slices WHERE k = $1), w1 AS (INSERT INTO entities VALUES ($2)) SELECT 1", params: [1, 2] },
      { text: "INSERT INTO slices VALUES ($1)", params: [3] },
      { text: "WITH x AS (SELECT $1) SELECT pg_notify($2, '')", params: [4, "ch"] },
      { text: "INSERT INTO runs VALUES ($1)", params: [5] },
    ]);
    expect(combineWrites([])).toEqual([]);
  });

  it("keeps every write, in order, with its own parameters (property, fixed seed)", () => {
    const writes = fc.array(
      fc.record({ table: fc.option(fc.constantFrom("a", "b", "c", "d"), { nil: null }), params: fc.array(fc.integer(), { maxLength: 3 }) }),
      { maxLength: 12 },
    );
    fc.assert(
      fc.property(writes, (specs) => {
        const pending = specs.map((spec, index) =>
          write(spec.table, `W${index}(${spec.params.map((_, p) => `$${p + 1}`).join(",")})`, ...spec.params),
        );
        const statements = combineWrites(pending);
        // Decode each statement back into its writes: W<i>(params) with the parameters substituted.
        const decoded = statements.flatMap((statement) =>
          [...statement.text.matchAll(/W(\d+)\(([^)]*)\)/gu)].map((match) => ({
            index: Number(match[1]),
            params: (match[2] ?? "") === "" ? [] : (match[2] ?? "").split(",").map((ref) => statement.params[Number(ref.slice(1)) - 1]),
          })),
        );
        expect(decoded).toEqual(specs.map((spec, index) => ({ index, params: spec.params })));
        // No statement names a table twice; a write without a table is alone.
        for (const statement of statements) {
          const members = [...statement.text.matchAll(/W(\d+)\(/gu)].map((match) => specs[Number(match[1])]?.table);
          if (members.length > 1) expect(members.includes(null)).toBe(false);
          expect(new Set(members).size).toBe(members.length);
        }
      }),
      { seed: 42, numRuns: 200 },
    );
  });
});

describe("renumberParameters", () => {
  it("shifts references outside quoted identifiers and string literals only", () => {
    expect(renumberParameters(`INSERT INTO "we$1ird""$2".t VALUES ($1, '$2', $10)`, 3)).toBe(`INSERT INTO "we$1ird""$2".t VALUES ($4, '$2', $13)`);
    expect(renumberParameters("SELECT $1", 0)).toBe("SELECT $1");
  });
});
