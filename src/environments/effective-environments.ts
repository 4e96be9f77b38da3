/**
 * The environments an assignment applies to (SPEC §4):
 * - selector `null` or omitted → the whole membership, in membership order;
 * - `[]` → none (the check runs env-less);
 * - a list → the membership filtered to the list, in membership order; ids no longer in the
 *   membership are silently dropped.
 * An empty membership always gives none.
 */
export function resolveEffectiveEnvironments(input: {
  readonly environmentIds?: readonly string[] | null | undefined;
  readonly membership: readonly string[];
}): string[] {
  const { environmentIds, membership } = input;
  if (environmentIds == null) return [...membership];
  const selected = new Set(environmentIds);
  return membership.filter((environmentId) => selected.has(environmentId));
}
