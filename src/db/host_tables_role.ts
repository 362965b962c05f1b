import type { ReservedSql } from "postgres";

/**
 * How a migration marked `-- migrate: host-tables` gets to change the API's
 * documents and tenants, which only their owner may alter or index:
 * - `none`: the current role has the owner's privileges already (it is the
 *   owner, an inheriting member, or a superuser), or the tables do not exist
 *   yet (0008 then creates stand-ins, owned by the current role);
 * - `set`: the current role is a member of the owner role without inheriting
 *   its privileges (NOINHERIT): the runner does `set role` for the file;
 * - `refused`: not a member; `message` names the owner and the grant that fixes it.
 */
export type HostTablesRole =
  | { kind: "none" }
  | { kind: "set"; owner: string }
  | { kind: "refused"; message: string };

/** Decides {@link HostTablesRole} for the current role and the API's documents and tenants. */
export async function hostTablesRole(conn: ReservedSql): Promise<HostTablesRole> {
  const rows = await conn`
    select distinct pg_get_userbyid(c.relowner)::text as owner,
           pg_has_role(current_user, c.relowner, 'USAGE') as has_privileges,
           pg_has_role(current_user, c.relowner, 'MEMBER') as is_member,
           current_user::text as me
    from pg_class c
    where c.oid in (to_regclass('documents'), to_regclass('tenants'))
  `;
  const lacking = rows.filter((row) => !row.has_privileges);
  if (lacking.length === 0) return { kind: "none" };
  const me = rows[0].me as string;
  const owners = [...new Set(rows.map((row) => row.owner as string))];
  if (owners.length === 1 && lacking[0].is_member) return { kind: "set", owner: owners[0] };
  const grants = lacking.filter((row) => !row.is_member).map((row) => `grant ${quote(row.owner)} to ${quote(me)};`);
  const reason = grants.length > 0
    ? `role ${me} is not a member of ${lacking.map((row) => row.owner).join(" and ")}, the owner of the API's ` +
      `documents and tenants, which the host-tables migrations alter and index. Fix: ${grants.join(" ")}`
    : `documents and tenants belong to different owners (${owners.join(", ")}), and role ${me} has the ` +
      `privileges of neither without SET ROLE. Fix: give both tables one owner, or make ${me} an inheriting ` +
      `member of both (grant ... to ${quote(me)} with inherit true).`;
  return { kind: "refused", message: `Cannot migrate the API's tables: ${reason}` };
}

/** A role name as SQL shows it: an identifier, double-quoted when it is not a plain lowercase one. */
function quote(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${name.replaceAll('"', '""')}"`;
}

/**
 * Acts as the owner for what follows on `conn` when `role` says so: `set
 * role` (`set local role` inside a transaction, which its rollback undoes);
 * the caller does `reset role` before recording the file. The owner needs
 * `usage` on the namespace to name its functions (the unsettled indexes'
 * predicate calls mailgun_webhook.status_rank): the current role, the
 * namespace's owner, grants it first.
 */
export async function becomeHostTablesOwner(conn: ReservedSql, role: HostTablesRole, local: boolean): Promise<void> {
  if (role.kind === "refused") throw new Error(role.message);
  if (role.kind === "none") return;
  await conn`grant usage on schema mailgun_webhook to ${conn(role.owner)}`;
  if (local) await conn`set local role ${conn(role.owner)}`;
  else await conn`set role ${conn(role.owner)}`;
}
