-- migrate: host-tables
-- The one column the service adds to the API's tables: the time of the event
-- that set email_status. With it, a row's status and its time are a pure
-- function of the set of its events, whatever their arrival order. Nullable,
-- no default: adding it rewrites nothing and changes no row.
alter table documents add column if not exists email_status_at timestamptz;
alter table tenants add column if not exists email_status_at timestamptz;

-- An earlier release built the unsettled indexes under names without the
-- prefix. Such an index is ours when its predicate calls our rank function
-- (0008 moved it into the namespace, identity kept): it takes the new name,
-- so that 0010 finds it instead of building it again. An index of that name
-- that does not call it is the API's, and is left alone.
do $$
declare
  t text;
  legacy regclass;
begin
  foreach t in array array['documents', 'tenants'] loop
    select i.indexrelid::regclass into legacy
    from pg_index i
    join pg_class c on c.oid = i.indexrelid
    join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = i.indexrelid
    where i.indrelid = t::regclass
      and c.relname = t || '_unsettled_idx'
      and d.refclassid = 'pg_proc'::regclass
      and d.refobjid = 'mailgun_webhook.status_rank(text)'::regprocedure;
    if legacy is not null and to_regclass(format('mailgun_webhook_%s_unsettled_idx', t)) is null then
      execute format('alter index %s rename to %I', legacy, format('mailgun_webhook_%s_unsettled_idx', t));
    end if;
  end loop;
end
$$;
