// RBAC: role → permission grants with wildcards, resolved at load into "permission → roles that grant it".

/** True when `grant` covers `permission`: equal, `*`, or a `prefix*` grant such as `orders:*`. */
export function grantCovers(grant: string, permission: string): boolean {
  if (grant === permission || grant === "*") return true;
  return grant.endsWith("*") && permission.startsWith(grant.slice(0, -1));
}

/** The roles whose grants cover `permission` (empty when no role does). */
export function rolesGranting(roles: Readonly<Record<string, readonly string[]>>, permission: string): ReadonlySet<string> {
  const out = new Set<string>();
  for (const [role, grants] of Object.entries(roles)) {
    if (grants.some((g) => grantCovers(g, permission))) out.add(role);
  }
  return out;
}
