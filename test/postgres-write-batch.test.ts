import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { preparedName } from "../adapters/postgres/sql-client";
import { compositeKey } from "../adapters/postgres/sql-values";
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
        prepare: false,
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
      { text: "WITH w0 AS (DELETE FROM slices WHERE k = $1), w1 AS (INSERT INTO entities VALUES ($2)) SELECT 1", params: [1, 2], prepare: false },
      { text: "INSERT INTO slices VALUES ($1)", params: [3], prepare: false },
      { text: "WITH x AS (SELECT $1) SELECT pg_notify($2, '')", params: [4, "ch"], prepare: false },
      { text: "INSERT INTO runs VALUES ($1)", params: [5], prepare: false },
    ]);
    expect(combineWrites([])).toEqual([]);
  });

  it("keeps a statement prepared only when every write in it may be (one unpreparable write spoils its statement only)", () => {
    const fixed = (table: string | null, text: string): PendingWrite => ({ table, text, params: [], prepare: true });
    const statements = combineWrites([
      fixed("runs", "INSERT INTO runs VALUES (1)"),
      fixed("slices", "INSERT INTO slices VALUES (1)"),
      fixed(null, "WITH x AS (SELECT 1) SELECT 1"),
      fixed("slices", "INSERT INTO slices VALUES (2)"),
      write("entities", "DELETE FROM entities WHERE id = 1"),
      fixed("runs", "INSERT INTO runs VALUES (2)"),
    ]);
    expect(statements.map((statement) => statement.prepare)).toEqual([true, true, false]);
    expect(statements[2]?.text).toBe(
      "WITH w0 AS (INSERT INTO slices VALUES (2)), w1 AS (DELETE FROM entities WHERE id = 1), w2 AS (INSERT INTO runs VALUES (2)) SELECT 1",
    );
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

describe("preparedName", () => {
  it("names each text by its hash (the same everywhere, distinct per text, within 63 bytes), up to 256 texts per process", () => {
    const first = preparedName("INSERT INTO a VALUES ($1)");
    expect(first).toMatch(/^healthstate_[0-9a-f]{40}$/u);
    expect(preparedName("INSERT INTO a VALUES ($1)")).toBe(first);
    expect(preparedName("INSERT INTO b VALUES ($1)")).not.toBe(first);
    const names = Array.from({ length: 300 }, (_, index) => preparedName(`INSERT INTO t${index} VALUES ($1)`));
    // Two texts named above, so 254 more get a name; the rest run unnamed.
    expect(names.filter((name) => name !== undefined)).toHaveLength(254);
    expect(new Set(names.filter((name) => name !== undefined)).size).toBe(254);
    expect(names.slice(254).every((name) => name === undefined)).toBe(true);
    // A text named before the bound keeps its name.
    expect(preparedName("INSERT INTO a VALUES ($1)")).toBe(first);
  });
});

describe("compositeKey", () => {
  const part = fc.oneof(fc.string({ unit: "binary" }), fc.integer(), fc.constant(null));
  /** Reads the parts back from a key: possible only because the encoding is unambiguous. */
  const decode = (key: string): (string | number | null)[] => {
    const parts: (string | number | null)[] = [];
    let at = 0;
    while (at < key.length) {
      if (key[at] === "n") {
        parts.push(null);
        at += 1;
      } else if (key[at] === "#") {
        const end = key.indexOf(";", at);
        parts.push(Number(key.slice(at + 1, end)));
        at = end + 1;
      } else {
        const colon = key.indexOf(":", at);
        const length = Number(key.slice(at, colon));
        parts.push(key.slice(colon + 1, colon + 1 + length));
        at = colon + 1 + length;
      }
    }
    return parts;
  };

  it("encodes every list of parts so that it can be read back: distinct lists never share a key (property, fixed seed)", () => {
    fc.assert(
      fc.property(fc.array(part, { maxLength: 6 }), (parts) => {
        expect(decode(compositeKey(...parts))).toEqual(parts);
      }),
      { seed: 7, numRuns: 2000 },
    );
  });

  it("keeps apart the separators and types a naive join would merge", () => {
    const keys = [
      compositeKey("a:b", "c"),
      compositeKey("a", "b:c"),
      compositeKey("1:a", null),
      compositeKey("1", "a"),
      compositeKey(null, "n"),
      compositeKey("n", null),
      compositeKey(1, "2"),
      compositeKey("1", 2),
      compositeKey("", ""),
      compositeKey(""),
      compositeKey(),
    ];
    expect(new Set(keys).size).toBe(keys.length);
  });
});
