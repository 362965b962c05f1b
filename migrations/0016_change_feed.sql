-- migrate: no-transaction
-- The trail as a change feed (docs/feed.md): every entry carries the id of
-- the transaction that wrote it (feed_txid), and a reader passes only
-- transactions below its snapshot's xmin, so that a transaction still in
-- flight (which may hold a lower id than one already committed) is never
-- skipped. A statement-level trigger wakes listeners on commit.
--
-- No transaction around this file: the index is built concurrently (the
-- trail keeps taking webhooks meanwhile). So every statement is safe to run
-- again from the start, and each that locks the trail bounds its own wait.

-- The column without a default first: a volatile default in ADD COLUMN would
-- rewrite the whole trail. Then the default alone, which is metadata only:
-- entries written before stay NULL and lie before the feed's start.
do $$
begin
  perform set_config('lock_timeout', '10s', true);
  alter table email_events add column if not exists feed_txid xid8;
  alter table email_events alter column feed_txid set default pg_current_xact_id();
end
$$;

-- The status an entry's type climbs to (the webhook's own mapping,
-- src/mailgun/map_event.ts); NULL for a temporary failure, which moves none.
create or replace function mailgun_webhook.feed_status(type text) returns text
  language sql immutable parallel safe
  set search_path = pg_catalog, pg_temp
  as $$
    select case type
      when 'EMAIL_DELIVERED' then 'DELIVERED'
      when 'EMAIL_FAILED' then 'FAILED'
      when 'EMAIL_COMPLAINED' then 'COMPLAINED'
    end
  $$;

-- A cursor that starts the feed now: every entry of a transaction that has
-- not ended at this moment is after it, every other one before it.
create or replace function mailgun_webhook.feed_now() returns text
  language sql stable
  set search_path = pg_catalog, pg_temp
  as $$ select pg_snapshot_xmin(pg_current_snapshot())::text || ':0' $$;

do $migration$
declare
  -- Where the trail is now (this migration's search_path), so that no later
  -- search_path decides it.
  trail_schema text := (select n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                        where c.oid = 'email_events'::regclass);
begin
  -- The feed's read: the entries after `after` (a cursor, `<txid>:<id>`, as
  -- this function returns them; `0:0` is the beginning) of transactions below
  -- the snapshot's xmin, in (transaction id, entry id) order, at most
  -- `max_entries`. Stable: xmin and the rows come from one snapshot, so that
  -- every transaction below xmin that committed is seen whole. Refuses
  -- (22023) a malformed cursor or limit.
  execute format($fn$
    create or replace function mailgun_webhook.feed_after(after text, max_entries integer default 100)
      returns table (
        cursor text, txid xid8, entry_id bigint, row_kind text, row_id text, type text, status text,
        rank integer, mailgun_event_id text, event_timestamp timestamptz, received_at timestamptz
      )
      language plpgsql stable
      set search_path = pg_catalog, pg_temp
      as $body$
      #variable_conflict use_column
      declare
        after_txid xid8;
        after_id bigint;
        horizon xid8 := pg_snapshot_xmin(pg_current_snapshot());
      begin
        if after is null or after !~ '^[0-9]{1,19}:[0-9]{1,19}$'
           or split_part(after, ':', 2)::numeric > 9223372036854775807 then
          raise exception using errcode = '22023',
            message = 'A feed cursor is <transaction id>:<entry id> as feed_after returned it, 0:0 for the beginning, '
              || 'or mailgun_webhook.feed_now() for now.';
        end if;
        if max_entries is null or max_entries < 1 or max_entries > 10000 then
          raise exception using errcode = '22023', message = 'feed_after reads 1 to 10000 entries at a time.';
        end if;
        after_txid := split_part(after, ':', 1)::xid8;
        after_id := split_part(after, ':', 2)::bigint;
        return query
          select e.feed_txid::text || ':' || e.id::text, e.feed_txid, e.id,
                 case when e.document_id is not null then 'document' else 'tenant' end,
                 coalesce(e.document_id::text, e.tenant_id::text), e.type,
                 mailgun_webhook.feed_status(e.type), mailgun_webhook.status_rank(mailgun_webhook.feed_status(e.type)),
                 e.mailgun_event_id, e.event_timestamp, e.received_at
          from %1$I.email_events e
          where e.feed_txid is not null
            and (e.feed_txid, e.id) > (after_txid, after_id)
            and e.feed_txid < horizon
          order by e.feed_txid, e.id
          limit max_entries;
      end
      $body$
  $fn$, trail_schema);

  -- One wake-up per statement that appended entries, sent on commit: the
  -- transaction id, and each entry's row kind, row id and the status it
  -- climbs to, no personal data. PostgreSQL refuses a payload of 8000 bytes
  -- or more: past about 7000 the rest is left out and "more" says so (the
  -- feed has everything; the notification is only a wake-up).
  execute $fn$
    create or replace function mailgun_webhook.notify_feed() returns trigger
      language plpgsql
      set search_path = pg_catalog, pg_temp
      as $body$
      declare
        payload text;
        entries integer;
      begin
        select '{"txid":"' || pg_current_xact_id()::text || '","entries":['
                 || coalesce(string_agg(item, ',' order by id) filter (where running <= 7000), '') || ']'
                 || case when bool_or(running > 7000) then ',"more":true' else '' end || '}',
               count(*)
        into payload, entries
        from (
          select id, item, sum(octet_length(item) + 1) over (order by id) as running
          from (
            select n.id,
                   json_build_array(case when n.document_id is not null then 'document' else 'tenant' end,
                                    coalesce(n.document_id::text, n.tenant_id::text),
                                    mailgun_webhook.feed_status(n.type))::text as item
            from new_entries n
          ) items
        ) sized;
        if entries > 0 then
          perform pg_notify('mailgun_webhook_feed', payload);
        end if;
        return null;
      end
      $body$
  $fn$;

  perform set_config('lock_timeout', '10s', true);
  execute format('drop trigger if exists email_events_feed_notify on %I.email_events', trail_schema);
  execute format($sql$
    create trigger email_events_feed_notify
      after insert on %1$I.email_events
      referencing new table as new_entries
      for each statement execute function mailgun_webhook.notify_feed()
  $sql$, trail_schema);
end
$migration$;

-- The update guard of 0011, now also keeping feed_txid: an entry's place in
-- the feed never moves, erasure included.
create or replace function mailgun_webhook.refuse_trail_update() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
  as $$
  begin
    if not exists (select 1 from mailgun_webhook.erasing_transactions where txid = txid_current()) then
      raise exception 'email_events is append-only: erase a person''s data with mailgun_webhook.erase_recipient(address)';
    end if;
    if (new.id, new.document_id, new.tenant_id, new.type, new.mailgun_event_id, new.event_timestamp,
        new.severity, new.reason, new.received_at, new.feed_txid)
       is distinct from (old.id, old.document_id, old.tenant_id, old.type, old.mailgun_event_id,
        old.event_timestamp, old.severity, old.reason, old.received_at, old.feed_txid) then
      raise exception 'email_events is append-only: an erasure changes only recipient and event_data';
    end if;
    return new;
  end
  $$;

-- The feed's order, for its entries only (the trail's older entries stay
-- out). Built concurrently: the webhook goes on writing meanwhile.
create index concurrently if not exists email_events_feed_idx on email_events (feed_txid, id)
  where feed_txid is not null;
