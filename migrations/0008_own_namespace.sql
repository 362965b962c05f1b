-- The service is a guest in the API's database: everything it creates lives
-- in its own schema, mailgun_webhook, in names no API uses, except the trail,
-- email_events, whose name the product documentation gives. The API's
-- documents and tenants are found, never created, unless there is no such
-- table at all (a development database): then stand-ins are created and
-- recorded in mailgun_webhook.stand_in_tables, so that the service can say
-- that it is not writing to the API's rows.

create schema if not exists mailgun_webhook;

create table if not exists mailgun_webhook.stand_in_tables (
  table_name text primary key,
  created_at timestamptz not null default now()
);

-- A database migrated by the release before the namespace (f0e3176: its
-- objects in the API's schema, webhook_tokens among them) is moved into the
-- namespace, rows kept, and ends in the same schema as a fresh install (a
-- test compares their catalogs). Functions move by SET SCHEMA and RENAME,
-- which keep their identity: the API's indexes that call the rank function
-- go on working. The trail guard, erasure and pruning are dropped here and
-- made again, under the namespace's names, by 0011 and 0012.
do $$
declare
  c record;
begin
  -- Known by the earlier release's migration record, which the runner adopted
  -- before this file runs: a table of the API's own that happens to be named
  -- webhook_tokens is not ours, and is left alone.
  if not exists (select 1 from mailgun_webhook.schema_migrations where name = '0007_token_day_partitions.sql') then
    return;
  end if;
  if to_regclass('webhook_tokens') is null
     or (select relkind from pg_class where oid = to_regclass('webhook_tokens')) <> 'p'
     or to_regprocedure('webhook_token_slot(timestamptz)') is null
     or to_regprocedure('email_status_rank(text)') is null
     or to_regprocedure('webhook_body_hash(jsonb)') is null
     or to_regclass('email_events') is null then
    raise exception 'The earlier release''s migration record says 0007_token_day_partitions.sql was applied, but its objects (webhook_tokens partitioned, email_status_rank, webhook_body_hash, webhook_token_slot, email_events) are not all there: restore them, or deploy release f0e3176 and run its deno task migrate first.';
  end if;

  alter function email_status_rank(text) set schema mailgun_webhook;
  alter function mailgun_webhook.email_status_rank(text) rename to status_rank;
  alter function webhook_body_hash(jsonb) set schema mailgun_webhook;
  alter function mailgun_webhook.webhook_body_hash(jsonb) rename to body_hash;
  alter function webhook_token_slot(timestamptz) set schema mailgun_webhook;
  alter function mailgun_webhook.webhook_token_slot(timestamptz) rename to token_slot;

  alter table webhook_tokens set schema mailgun_webhook;
  alter table mailgun_webhook.webhook_tokens rename to tokens;
  alter index mailgun_webhook.webhook_tokens_pkey rename to tokens_pkey;
  for s in 0..15 loop
    execute format('alter table %I set schema mailgun_webhook', 'webhook_tokens_' || lpad(s::text, 2, '0'));
    execute format('alter table mailgun_webhook.%I rename to %I',
      'webhook_tokens_' || lpad(s::text, 2, '0'), 'tokens_' || lpad(s::text, 2, '0'));
    execute format('alter index mailgun_webhook.%I rename to %I',
      'webhook_tokens_' || lpad(s::text, 2, '0') || '_pkey', 'tokens_' || lpad(s::text, 2, '0') || '_pkey');
  end loop;

  -- Servers that keep NOT NULL as named constraints (PostgreSQL 18 and
  -- later) named the earlier table's after it: they take the names a fresh
  -- install gives. A rename on the parent renames its partitions' too.
  for c in
    select con.conname, 'tokens_' || a.attname || '_not_null' as fresh
    from pg_constraint con
    join pg_attribute a on a.attrelid = con.conrelid and a.attnum = con.conkey[1]
    where con.conrelid = 'mailgun_webhook.tokens'::regclass and con.contype = 'n'
      and con.conname <> 'tokens_' || a.attname || '_not_null'
  loop
    execute format('alter table mailgun_webhook.tokens rename constraint %I to %I', c.conname, c.fresh);
  end loop;

  drop trigger if exists email_events_append_only on email_events;
  drop trigger if exists email_events_delete_guard on email_events;
  drop trigger if exists email_events_update_guard on email_events;
  drop function if exists email_events_refuse_change();
  drop function if exists email_events_refuse_delete();
  drop function if exists email_events_refuse_update();
  drop function if exists email_events_erase_recipient(text);
  drop function if exists email_events_erased_event_data(jsonb, text);
  drop function if exists email_events_scrub(jsonb, text);
  drop function if exists prune_webhook_token_slots(float8, float8);

  -- 0001 created documents and tenants when the API had none; it left no
  -- record of it. A table with exactly its columns (id, email_message_id,
  -- email_status, and email_status_at, which 0001 added) is taken as its
  -- stand-in: an API's real table has columns of its own. A heuristic: when
  -- in doubt a table is taken as the API's, which is the safe side.
  insert into mailgun_webhook.stand_in_tables (table_name)
  select t.name
  from unnest(array['documents', 'tenants']) as t(name)
  where (
    select array_agg(a.attname::text order by a.attname)
    from pg_attribute a
    where a.attrelid = to_regclass(t.name) and a.attnum > 0 and not a.attisdropped
  ) = array['email_message_id', 'email_status', 'email_status_at', 'id']
  on conflict (table_name) do nothing;
end
$$;

do $$
begin
  if to_regclass('documents') is null then
    create table documents (
      id bigint generated by default as identity primary key,
      email_message_id text,
      email_status text
    );
    insert into mailgun_webhook.stand_in_tables (table_name) values ('documents');
  end if;
  if to_regclass('tenants') is null then
    create table tenants (
      id bigint generated by default as identity primary key,
      email_message_id text,
      email_status text
    );
    insert into mailgun_webhook.stand_in_tables (table_name) values ('tenants');
  end if;
end
$$;

-- The ladder a status only ever climbs: SENT < DELIVERED < FAILED < COMPLAINED.
-- Any other value (the API's own PENDING, BOUNCED, lowercase ones, NULL) ranks 0 and is climbed from.
create or replace function mailgun_webhook.status_rank(status text) returns integer
  language sql immutable parallel safe
  as $$
    select case status
      when 'SENT' then 1
      when 'DELIVERED' then 2
      when 'FAILED' then 3
      when 'COMPLAINED' then 4
      else 0
    end
  $$;

-- The hash a signature token is bound to: SHA-256 of the event-data's jsonb
-- text, which is canonical (keys in a fixed order, fixed spacing), so a retry
-- whose event-data was formatted or ordered differently still matches.
create or replace function mailgun_webhook.body_hash(event_data jsonb) returns bytea
  language sql immutable parallel safe
  as $$ select sha256(convert_to(event_data::text, 'UTF8')) $$;

-- The partition of a token: the UTC day of its signature modulo 16. Modulo
-- twice: a signature before 1970 has a negative day number.
create or replace function mailgun_webhook.token_slot(signed_at timestamptz) returns smallint
  language sql immutable parallel safe
  as $$ select (((floor(extract(epoch from signed_at) / 86400)::bigint % 16) + 16) % 16)::smallint $$;

-- Consumed signature tokens, each bound to the hash of the event-data it came
-- with, split by day of signature so that pruning empties whole partitions.
-- A replayed signature carries the same timestamp (the signature covers it),
-- hence the same slot, so it meets its first use.
create table if not exists mailgun_webhook.tokens (
  token text not null,
  body_hash bytea not null,
  signed_at timestamptz not null,
  consumed_at timestamptz not null default now(),
  slot smallint not null,
  primary key (token, slot)
) partition by list (slot);

do $$
begin
  for s in 0..15 loop
    execute format('create table if not exists mailgun_webhook.%I partition of mailgun_webhook.tokens for values in (%s)',
      'tokens_' || lpad(s::text, 2, '0'), s);
  end loop;
end
$$;

-- The audit trail: one row per Mailgun event and matched row. Its keys to the
-- API's rows take the type of the API's own keys (bigint, integer or uuid),
-- which must be the whole primary key or a unique key of the table.
do $$
declare
  key_types text[];
  t text;
  key_type text;
begin
  -- An earlier release's trail stays as it is, rows, keys and all (its
  -- record was adopted by the runner). Any other email_events is not ours.
  if to_regclass('email_events') is not null and exists (
    select 1 from mailgun_webhook.schema_migrations where name = '0007_token_day_partitions.sql'
  ) then
    return;
  end if;
  if to_regclass('email_events') is not null then
    raise exception 'The API already has a table email_events, the name the product documentation gives the trail: '
      'rename the API''s table, or migrate into a database where the name is free.';
  end if;
  foreach t in array array['documents', 'tenants'] loop
    select format_type(a.atttypid, a.atttypmod) into key_type
    from pg_attribute a
    where a.attrelid = t::regclass and a.attname = 'id' and not a.attisdropped;
    if key_type is null then
      raise exception 'The API''s table % has no column id: the trail references rows by id.', t;
    end if;
    if key_type not in ('bigint', 'integer', 'uuid') then
      raise exception 'The API''s table % has an id of type %: the trail supports bigint, integer and uuid keys.',
        t, key_type;
    end if;
    if not exists (
      select 1 from pg_index i
      where i.indrelid = t::regclass and i.indisunique and i.indpred is null and i.indexprs is null
        and i.indnkeyatts = 1
        and i.indkey[0] = (select attnum from pg_attribute where attrelid = t::regclass and attname = 'id')
    ) then
      raise exception 'The API''s table %.id is neither its primary key nor unique: the trail cannot reference it.', t;
    end if;
    key_types := key_types || key_type;
  end loop;

  execute format($sql$
    create table email_events (
      id bigint generated always as identity primary key,
      document_id %s references documents (id) on delete cascade,
      tenant_id %s references tenants (id) on delete cascade,
      type text not null check (
        type in ('EMAIL_DELIVERED', 'EMAIL_FAILED', 'EMAIL_TEMP_FAILED', 'EMAIL_COMPLAINED')
      ),
      mailgun_event_id text not null,
      event_timestamp timestamptz not null,
      recipient text,
      severity text,
      reason text,
      event_data jsonb not null,
      received_at timestamptz not null default now(),
      constraint email_events_one_owner check (num_nonnulls(document_id, tenant_id) = 1)
    )
  $sql$, key_types[1], key_types[2]);
end
$$;

-- One entry per (row, Mailgun event id, UTC day of the event): Mailgun's ids
-- are unique only within a day, and the day, unlike the timestamp, is the
-- same whether the event came by webhook (microseconds) or from the Logs API
-- (milliseconds). The keys also serve "the trail of one row".
create unique index if not exists email_events_document_event_day_key
  on email_events (document_id, mailgun_event_id, ((event_timestamp at time zone 'UTC')::date))
  where document_id is not null;
create unique index if not exists email_events_tenant_event_day_key
  on email_events (tenant_id, mailgun_event_id, ((event_timestamp at time zone 'UTC')::date))
  where tenant_id is not null;
