import { fc, test } from "@fast-check/vitest";
import { MAX_ID_LENGTH, ValidationError, encodeHealthEntityId, parseHealthEntityId, type HealthEntityRef } from "healthstate";
import { describe, expect, it } from "vitest";

function isControl(codePoint: number): boolean {
  return codePoint <= 0x1f || (codePoint >= 0x7f && codePoint <= 0x9f);
}

/** Replaces control characters (not allowed in ids) with "_", keeping every other code point. */
function withoutControls(value: string): string {
  return [...value].map((char) => (isControl(char.codePointAt(0) as number) ? "_" : char)).join("");
}

function truncateCodePoints(value: string, max: number): string {
  return [...value].slice(0, max).join("");
}

const fragment = fc.oneof(
  fc.string({ unit: "grapheme", minLength: 1, maxLength: 6 }),
  fc.string({ unit: "binary", minLength: 1, maxLength: 4 }),
  fc.constantFrom(":", "%", "::", ":::", "%25", "%3A", "%3a", "%%", "%2", "25", "3A"),
);

/** Every valid id part: non-empty, at most 256 code points, no control characters, any other unicode. */
const validIdPart = fc
  .oneof(
    { weight: 4, arbitrary: fc.array(fragment, { minLength: 1, maxLength: 20 }).map((parts) => parts.join("")) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme", minLength: 250, maxLength: 300 }) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", minLength: 1, maxLength: 300 }) },
  )
  .map((value) => truncateCodePoints(withoutControls(value), MAX_ID_LENGTH));

const validRef: fc.Arbitrary<HealthEntityRef> = fc.record({
  systemId: validIdPart,
  environmentId: fc.option(validIdPart, { nil: null }),
});

const PART = "(?:[^:%]|%25|%3A)+";
const CANONICAL = new RegExp(`^${PART}(?:::${PART})?$`, "u");

/** Independent statement of which ids are canonical, for ids built from the alphabet below. */
function isCanonical(id: string): boolean {
  return CANONICAL.test(id) && ![...id].some((char) => isControl(char.codePointAt(0) as number));
}

const candidateId = fc
  .array(fc.constantFrom(":", ":", "%", "%", "3", "A", "a", "2", "5", "b", "é", "🚀", "\u0007"), { maxLength: 16 })
  .map((chars) => chars.join(""));

function expectInvalid(id: unknown, reason: RegExp): ValidationError {
  const result = parseHealthEntityId(id as string);
  expect(result.isErr()).toBe(true);
  const error = result._unsafeUnwrapErr();
  expect(error).toBeInstanceOf(ValidationError);
  expect(error.type).toBe("validation");
  expect(error.issues).toHaveLength(1);
  expect(error.issues[0]?.path).toEqual(["entityId"]);
  const message = error.issues[0]?.message ?? "";
  expect(message).toMatch(reason);
  expect(error.message).toContain(message);
  return error;
}

describe("encodeHealthEntityId (§3)", () => {
  it("leaves ids without % and : unchanged, as in the reference system", () => {
    expect(encodeHealthEntityId({ systemId: "sys-1", environmentId: null })._unsafeUnwrap()).toBe("sys-1");
    expect(encodeHealthEntityId({ systemId: "sys-1" })._unsafeUnwrap()).toBe("sys-1");
    expect(encodeHealthEntityId({ systemId: "sys-1", environmentId: undefined })._unsafeUnwrap()).toBe("sys-1");
    expect(encodeHealthEntityId({ systemId: "sys-1", environmentId: "prod" })._unsafeUnwrap()).toBe("sys-1::prod");
    expect(encodeHealthEntityId({ systemId: "système ü 🚀", environmentId: "生产" })._unsafeUnwrap()).toBe("système ü 🚀::生产");
  });

  it("percent-encodes exactly % and :", () => {
    expect(encodeHealthEntityId({ systemId: "a%b", environmentId: "x:y" })._unsafeUnwrap()).toBe("a%25b::x%3Ay");
    expect(encodeHealthEntityId({ systemId: "a::b", environmentId: null })._unsafeUnwrap()).toBe("a%3A%3Ab");
    expect(encodeHealthEntityId({ systemId: "%3A", environmentId: "::" })._unsafeUnwrap()).toBe("%253A::%3A%3A");
    expect(encodeHealthEntityId({ systemId: "a/b?c#d&e=f+g h", environmentId: null })._unsafeUnwrap()).toBe("a/b?c#d&e=f+g h");
  });

  it("accepts 256 code points, even when they take 512 UTF-16 units", () => {
    const emoji = "🚀".repeat(256);
    expect(encodeHealthEntityId({ systemId: emoji, environmentId: "x".repeat(256) }).isOk()).toBe(true);
  });

  it("rejects invalid parts with a path per part", () => {
    const both = encodeHealthEntityId({ systemId: "", environmentId: "a\u0001" })._unsafeUnwrapErr();
    expect(both).toBeInstanceOf(ValidationError);
    expect(both.issues).toEqual([
      { path: ["systemId"], message: "must not be empty" },
      { path: ["environmentId"], message: "must not contain control characters" },
    ]);
    // An empty environment id is invalid, not the rollup.
    expect(encodeHealthEntityId({ systemId: "s", environmentId: "" })._unsafeUnwrapErr().issues[0]?.path).toEqual(["environmentId"]);
    expect(encodeHealthEntityId({ systemId: "x".repeat(257) })._unsafeUnwrapErr().issues[0]?.message).toMatch(/at most 256/);
    expect(encodeHealthEntityId({ systemId: "a\u0085b" })._unsafeUnwrapErr().issues[0]?.message).toMatch(/control/);
    expect(encodeHealthEntityId({ systemId: "a\uD800" })._unsafeUnwrapErr().issues[0]?.message).toMatch(/well-formed/);
    expect(encodeHealthEntityId({ systemId: 42 as unknown as string }).isErr()).toBe(true);
  });
});

describe("parseHealthEntityId (§3)", () => {
  it("parses rollup and environment ids", () => {
    expect(parseHealthEntityId("sys-1")._unsafeUnwrap()).toEqual({ systemId: "sys-1", environmentId: null });
    expect(parseHealthEntityId("sys-1::prod")._unsafeUnwrap()).toEqual({ systemId: "sys-1", environmentId: "prod" });
    expect(parseHealthEntityId("a%25b::x%3Ay")._unsafeUnwrap()).toEqual({ systemId: "a%b", environmentId: "x:y" });
    expect(parseHealthEntityId("a%3A%3Ab")._unsafeUnwrap()).toEqual({ systemId: "a::b", environmentId: null });
    expect(parseHealthEntityId("%253A::%3A%3A")._unsafeUnwrap()).toEqual({ systemId: "%3A", environmentId: "::" });
    expect(parseHealthEntityId("système 🚀::生产")._unsafeUnwrap()).toEqual({ systemId: "système 🚀", environmentId: "生产" });
  });

  it.each([
    ["", /empty system part/],
    ["a::", /empty environment part/],
    ["::b", /empty system part/],
    ["::", /empty system part/],
    ["a::b::c", /more than one "::"/],
    ["a::::b", /more than one "::"/],
    ["a:b", /unescaped ":" in the system part/],
    ["a::b:c", /unescaped ":" in the environment part/],
    ["a:::b", /unescaped ":" in the environment part/],
    [":a", /unescaped ":"/],
    ["%zz", /invalid escape in the system part/],
    ["%3a", /invalid escape/],
    ["a::x%3a", /invalid escape in the environment part/],
    ["%", /invalid escape/],
    ["a%", /invalid escape/],
    ["a%2", /invalid escape/],
    ["%41", /invalid escape/],
    ["a\u0007b", /system id must not contain control characters/],
    ["a::b\u0000", /environment id must not contain control characters/],
    ["a\u009f", /control characters/],
    ["a::\uDC00", /environment id must be well-formed/],
    ["x".repeat(257), /system id must be at most 256 characters \(got 257\)/],
    [`s::${"%3A".repeat(257)}`, /environment id must be at most 256 characters/],
  ])("rejects %j naming the id and the reason", (id, reason) => {
    const error = expectInvalid(id, reason);
    const shown = id.length > 80 ? id.slice(0, 80) : id;
    expect(error.issues[0]?.message).toContain(JSON.stringify(shown).slice(0, -1));
    expect(error.issues[0]?.message).toMatch(/^invalid entity id /);
  });

  it("shortens very long ids in the message", () => {
    const id = "y".repeat(300);
    const message = expectInvalid(id, /at most 256/).issues[0]?.message ?? "";
    expect(message).toContain(`"${"y".repeat(80)}…"`);
    expect(message).not.toContain("y".repeat(81));
  });

  it.each([
    [42, "42"],
    [null, "null"],
    [undefined, "undefined"],
    [{ systemId: "a" }, "[object Object]"],
  ])("rejects the non-string %j", (id, shown) => {
    const error = expectInvalid(id, /must be a string/);
    expect(error.issues[0]?.message).toBe(`invalid entity id ${shown}: an entity id must be a string`);
  });

  it("accepts ids of exactly 256 code points per part", () => {
    const part = "é".repeat(256);
    expect(parseHealthEntityId(`${part}::${part}`)._unsafeUnwrap()).toEqual({ systemId: part, environmentId: part });
  });
});

describe("entity id round trips (§3, properties)", () => {
  test.prop([validRef], { numRuns: 500 })("parse(encode(ref)) = ref for every valid ref", (ref) => {
    const encoded = encodeHealthEntityId(ref);
    expect(encoded.isOk()).toBe(true);
    const id = encoded._unsafeUnwrap();
    expect(parseHealthEntityId(id)._unsafeUnwrap()).toEqual(ref);
    // The separator is present exactly for environment ids, and never otherwise.
    expect(id.split("::").length).toBe(ref.environmentId === null ? 1 : 2);
  });

  test.prop([validIdPart])("encoding only changes % and :", (part) => {
    const id = encodeHealthEntityId({ systemId: part })._unsafeUnwrap();
    expect(id.replaceAll("%3A", ":").replaceAll("%25", "%")).toBe(part);
    expect(id.includes(":")).toBe(false);
    if (!part.includes("%") && !part.includes(":")) expect(id).toBe(part);
  });

  it("parse accepts exactly the canonical ids, and encode(parse(id)) = id for each", () => {
    let accepted = 0;
    let rejected = 0;
    fc.assert(
      fc.property(candidateId, (id) => {
        const parsed = parseHealthEntityId(id);
        expect(parsed.isOk()).toBe(isCanonical(id));
        if (parsed.isOk()) {
          accepted += 1;
          expect(encodeHealthEntityId(parsed.value)._unsafeUnwrap()).toBe(id);
        } else {
          rejected += 1;
          expect(parsed.error).toBeInstanceOf(ValidationError);
          expect(parsed.error.issues[0]?.message).toContain(JSON.stringify(id));
        }
      }),
      { numRuns: 3000 },
    );
    // The generator must exercise both sides for the property to mean anything.
    expect(accepted).toBeGreaterThan(100);
    expect(rejected).toBeGreaterThan(100);
  });
});
