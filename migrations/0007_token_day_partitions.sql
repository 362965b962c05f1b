-- Consumed tokens are split by the UTC day of their signature into 16
-- partitions, one per day number modulo 16, so that pruning empties a whole
-- partition whose days no signature window can admit (TRUNCATE: constant
-- time, no dead rows, no vacuum) instead of deleting millions of rows one by
-- one under live traffic (measured: p99 doubled while a day of tokens went).
-- The widest window the service can be configured with (7 d of age, 1 d of
-- future skew, 1 h of margin, each way) spans at most 11 days: at least 5 of
-- the 16 partitions are out of every window at any time.
--
-- The key becomes (token, slot). A replayed signature carries the same
-- timestamp (the signature covers it), hence the same day and slot, so it
-- still meets its first use.
--
-- While a deploy runs, a revision from before this migration cannot write a
-- token here (its ON CONFLICT (token) has no matching key): it answers 503
-- and Mailgun retries the webhook later, to the new revision. Nothing is lost
-- and no replay is let through; the old revision never writes a table nobody
-- reads.

create or replace function webhook_token_slot(signed_at timestamptz) returns smallint
  language sql immutable parallel safe
  -- Modulo twice: a signature before 1970 has a negative day number.
  as $$ select (((floor(extract(epoch from signed_at) / 86400)::bigint % 16) + 16) % 16)::smallint $$;

alter table webhook_tokens rename to webhook_tokens_unpartitioned;
alter index if exists webhook_tokens_signed_at_idx rename to webhook_tokens_unpartitioned_signed_at_idx;
alter index if exists webhook_tokens_pkey rename to webhook_tokens_unpartitioned_pkey;

create table webhook_tokens (
  token text not null,
  body_hash bytea not null,
  signed_at timestamptz not null,
  consumed_at timestamptz not null default now(),
  slot smallint not null
) partition by list (slot);

create table webhook_tokens_00 partition of webhook_tokens for values in (0);
create table webhook_tokens_01 partition of webhook_tokens for values in (1);
create table webhook_tokens_02 partition of webhook_tokens for values in (2);
create table webhook_tokens_03 partition of webhook_tokens for values in (3);
create table webhook_tokens_04 partition of webhook_tokens for values in (4);
create table webhook_tokens_05 partition of webhook_tokens for values in (5);
create table webhook_tokens_06 partition of webhook_tokens for values in (6);
create table webhook_tokens_07 partition of webhook_tokens for values in (7);
create table webhook_tokens_08 partition of webhook_tokens for values in (8);
create table webhook_tokens_09 partition of webhook_tokens for values in (9);
create table webhook_tokens_10 partition of webhook_tokens for values in (10);
create table webhook_tokens_11 partition of webhook_tokens for values in (11);
create table webhook_tokens_12 partition of webhook_tokens for values in (12);
create table webhook_tokens_13 partition of webhook_tokens for values in (13);
create table webhook_tokens_14 partition of webhook_tokens for values in (14);
create table webhook_tokens_15 partition of webhook_tokens for values in (15);

-- Only tokens some window could still admit move over: no configuration
-- reaches further back than 8 days and 1 hour. The key is built after the
-- copy (one sorted build per partition, not millions of insertions).
insert into webhook_tokens (token, body_hash, signed_at, consumed_at, slot)
select token, body_hash, signed_at, consumed_at, webhook_token_slot(signed_at)
from webhook_tokens_unpartitioned
where signed_at > now() - interval '9 days';

alter table webhook_tokens add primary key (token, slot);

drop table webhook_tokens_unpartitioned;

-- Empties every partition that holds no day between `older_than_seconds`
-- ago and `ahead_seconds` ahead (by the database's clock), and returns how
-- many it emptied. A partition is emptied only when it holds rows, so an
-- idle pruning takes no lock stronger than a read. Refuses a window of 16
-- days or more, which would leave no partition out of it.
create or replace function prune_webhook_token_slots(older_than_seconds float8, ahead_seconds float8)
  returns int
  language plpgsql
  as $$
  declare
    first_day bigint := floor((extract(epoch from now()) - older_than_seconds) / 86400);
    last_day bigint := floor((extract(epoch from now()) + ahead_seconds) / 86400);
    live smallint[];
    emptied int := 0;
  begin
    -- Emptying waits only for readers of that partition (the service writes
    -- only to live ones): a short bound, and the next pruning tries again.
    set local lock_timeout = '2s';
    if last_day - first_day + 1 >= 16 then
      raise exception 'a token window of % days leaves no partition of webhook_tokens to prune', last_day - first_day + 1;
    end if;
    select array_agg(webhook_token_slot(to_timestamp(d * 86400.0)))
      into live from generate_series(first_day, last_day) d;
    for s in 0..15 loop
      if not s = any(live) and exists (select 1 from webhook_tokens where slot = s) then
        execute format('truncate table %I', 'webhook_tokens_' || lpad(s::text, 2, '0'));
        emptied := emptied + 1;
      end if;
    end loop;
    return emptied;
  end
  $$;
