import type { HealthEvent } from "../events";

/**
 * Wraps a subscriber so that a flapping entity notifies it once, with the net change, instead of
 * on every flip (SPEC §10). The wrapped handler receives:
 * - every transition outside flapping (including the one that starts a flap);
 * - `health.flapping_started`;
 * - `health.flapping_stopped` only when the flap changed the status (`statusBefore` ≠
 *   `statusAfter`): that event is the net-change notification, read `statusAfter`;
 * - every other event (maintenance boundaries) unchanged.
 * Transitions marked `flapping: true` and a `flapping_stopped` without net change are dropped
 * (acknowledged without calling the handler). No recovery or problem is swallowed: the last
 * status the handler heard of is always the entity's status once a flap ends.
 *
 * @example
 * engine.subscribe(muteFlapping((event) => pager.send(event)), { group: "pager" });
 */
export function muteFlapping<R>(handler: (event: HealthEvent) => R): (event: HealthEvent) => R | undefined {
  return (event) => {
    if (event.type === "health.transition" && event.flapping === true) return undefined;
    if (event.type === "health.flapping_stopped" && event.statusBefore === event.statusAfter) return undefined;
    return handler(event);
  };
}
