import {
  ClosedError,
  ConflictError,
  HEALTH_ERROR_CODES,
  NotFoundError,
  StoreError,
  ValidationError,
  type HealthError,
} from "healthstate";
import { describe, expect, it } from "vitest";
import { validationError } from "../../src/errors";

function describeError(error: HealthError): string {
  switch (error.type) {
    case "validation":
      return `validation:${error.issues.length}`;
    case "conflict":
      return "conflict";
    case "not_found":
      return "not_found";
    case "store":
      return `store:${error.operation}`;
    case "closed":
      return "closed";
  }
}

describe("errors", () => {
  it("have stable codes", () => {
    expect(HEALTH_ERROR_CODES).toEqual({
      validation: "ERR_HEALTH_VALIDATION",
      conflict: "ERR_HEALTH_CONFLICT",
      notFound: "ERR_HEALTH_NOT_FOUND",
      store: "ERR_HEALTH_STORE",
      closed: "ERR_HEALTH_CLOSED",
    });
  });

  it.each([
    [new ValidationError([{ path: [], message: "bad" }]), "validation", "ERR_HEALTH_VALIDATION", "ValidationError"],
    [new ConflictError("already ended"), "conflict", "ERR_HEALTH_CONFLICT", "ConflictError"],
    [new NotFoundError("no such window"), "not_found", "ERR_HEALTH_NOT_FOUND", "NotFoundError"],
    [new StoreError("recordRun", new Error("connection reset")), "store", "ERR_HEALTH_STORE", "StoreError"],
    [new ClosedError("recordRun"), "closed", "ERR_HEALTH_CLOSED", "ClosedError"],
  ] as const)("%s carries type %s and code %s", (error, type, code, name) => {
    expect(error).toBeInstanceOf(Error);
    expect(error.type).toBe(type);
    expect(error.code).toBe(code);
    expect(error.name).toBe(name);
    expect(typeof error.stack).toBe("string");
  });

  it("are discriminated on type", () => {
    const errors: HealthError[] = [
      new ValidationError([{ path: ["a"], message: "x" }]),
      new ConflictError("c"),
      new NotFoundError("n"),
      new StoreError("getHealth", "boom"),
      new ClosedError("flush"),
    ];
    expect(errors.map(describeError)).toEqual(["validation:1", "conflict", "not_found", "store:getHealth", "closed"]);
  });

  it("ValidationError summarises its issues with their paths", () => {
    const error = new ValidationError([
      { path: [0, "status"], message: "must be one of healthy, degraded, unhealthy" },
      { path: [], message: 'Unrecognized key: "x"' },
    ]);
    expect(error.message).toBe('invalid input: 0.status: must be one of healthy, degraded, unhealthy; Unrecognized key: "x"');
    expect(error.issues).toHaveLength(2);
  });

  it("ValidationError shows at most five issues and counts the rest", () => {
    const issues = Array.from({ length: 8 }, (_, index) => ({ path: ["runs", index], message: `problem ${index}` }));
    const error = new ValidationError(issues);
    expect(error.message).toContain("runs.4: problem 4");
    expect(error.message).not.toContain("problem 5");
    expect(error.message).toMatch(/\(and 3 more\)$/);
    expect(error.issues).toHaveLength(8);
    expect(new ValidationError(issues.slice(0, 5)).message).not.toContain("more");
  });

  it("ValidationError accepts an explicit message", () => {
    const error = new ValidationError([{ path: ["a"], message: "b" }], "custom");
    expect(error.message).toBe("custom");
    expect(error.issues).toEqual([{ path: ["a"], message: "b" }]);
  });

  it("validationError builds a single-issue error", () => {
    const error = validationError(["entityId"], "unknown");
    expect(error).toBeInstanceOf(ValidationError);
    expect(error.issues).toEqual([{ path: ["entityId"], message: "unknown" }]);
    expect(error.message).toBe("invalid input: entityId: unknown");
  });

  it("StoreError names the operation and keeps the cause", () => {
    const cause = new Error("connection reset");
    const error = new StoreError("recordRun", cause);
    expect(error.operation).toBe("recordRun");
    expect(error.cause).toBe(cause);
    expect(error.message).toBe("recordRun failed: connection reset");
    expect(new StoreError("listTransitions", "timeout").message).toBe("listTransitions failed: timeout");
    expect(new StoreError("x", { toString: () => "weird" }).message).toBe("x failed: weird");
  });

  it("ClosedError names the operation", () => {
    expect(new ClosedError("subscribe").message).toBe("subscribe called after close()");
  });
});
