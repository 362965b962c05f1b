-- One prune horizon for every instance. Each instance prunes consumed tokens
-- by its own signature window, but instances (or one instance restarted with
-- another SIGNATURE_MAX_AGE_SECONDS) may disagree: a token one of them pruned
-- may belong to a signature another still admits, which could then carry any
-- body. So the pruner records here the instant before which tokens may be
-- gone, before it empties anything, and the token statement
-- (src/db/write_batch_query.ts) refuses every signature older than it.

-- One row, never deleted: `pruned_before` only moves forward.
create table mailgun_webhook.token_horizon (
  one_row boolean primary key default true check (one_row),
  pruned_before timestamptz not null
);

-- A fresh database has pruned nothing. A database carried over from an
-- earlier release (its migration 0007 adopted into our record) was pruned by
-- instances whose windows we cannot know: it starts where the default window
-- (24 h back, 5 min skew, 1 h margin) prunes. Signatures older than that are
-- never Mailgun's retries (8 h), so no genuine delivery is lost by it.
insert into mailgun_webhook.token_horizon (pruned_before)
select case
  when exists (select 1 from mailgun_webhook.schema_migrations where name = '0007_token_day_partitions.sql')
    then to_timestamp(floor((extract(epoch from now()) - (86400 + 300 + 3600)) / 86400) * 86400)
  else '-infinity'::timestamptz
end;

-- The earlier release's pruning function, which knew no horizon (only where
-- that release created it: its 0007 is in our record).
do $$
begin
  if exists (select 1 from mailgun_webhook.schema_migrations where name = '0007_token_day_partitions.sql') then
    drop function if exists prune_webhook_token_slots(float8, float8);
  end if;
end
$$;

-- What a pruning reaching `older_than_seconds` back and `ahead_seconds` ahead
-- (by the database's clock) would do: `first_live`, the start of the first
-- UTC day it keeps (the horizon it needs), and `slots`, the partitions it
-- would empty: those that hold no day it keeps, and hold rows. Refuses a
-- window of 16 days or more, which would leave no partition out of it.
create function mailgun_webhook.token_prune_plan(
  older_than_seconds float8,
  ahead_seconds float8,
  out first_live timestamptz,
  out slots smallint[]
)
  language plpgsql
  as $$
  declare
    first_day bigint := floor((extract(epoch from now()) - older_than_seconds) / 86400);
    last_day bigint := floor((extract(epoch from now()) + ahead_seconds) / 86400);
    live smallint[];
  begin
    if last_day - first_day + 1 >= 16 then
      raise exception 'a token window of % days leaves no partition of mailgun_webhook.tokens to prune', last_day - first_day + 1;
    end if;
    first_live := to_timestamp(first_day * 86400.0);
    select array_agg(mailgun_webhook.token_slot(to_timestamp(d * 86400.0)))
      into live from generate_series(first_day, last_day) d;
    -- Rows looked for one partition at a time: an idle pruning only reads.
    select coalesce(array_agg(s::smallint order by s), '{}')
      into slots
      from generate_series(0, 15) s
      where not s = any(live) and exists (select 1 from mailgun_webhook.tokens where slot = s);
  end
  $$;

-- Moves the horizon up to `needed` unless it is there already (never
-- backwards: another instance may have moved it further). Returns it.
--
-- Why the horizon can be trusted once this commits: `lock table ... in share
-- mode` conflicts with the ROW EXCLUSIVE lock every token statement takes on
-- mailgun_webhook.tokens, so it waits until every statement that inserts
-- tokens has committed or rolled back, and holds back the ones that start
-- meanwhile. In READ COMMITTED a statement takes its snapshot after it has
-- acquired the locks on the tables it names (at parse, or at bind for a
-- prepared statement), so a token statement held back reads the new horizon.
-- Hence, once this transaction commits, no token statement still running has
-- read an older horizon, and a partition holding only days before the horizon
-- may be emptied (in this transaction or any later one): a signature whose
-- token was there is refused as expired, never let in with another body.
-- Without the lock, a replay could read the old horizon, the partition be
-- emptied meanwhile, and its insert then find no conflict.
-- The lock is taken only when the horizon moves (about once a day per
-- window), is held for one row's update, and gives up after lock_timeout (the
-- next pruning tries again); token statements wait meanwhile, no longer.
create function mailgun_webhook.raise_token_horizon(needed timestamptz)
  returns timestamptz
  language plpgsql
  as $$
  declare
    horizon timestamptz;
  begin
    select pruned_before into horizon from mailgun_webhook.token_horizon;
    if not found then
      raise exception 'mailgun_webhook.token_horizon has lost its row: run deno task migrate';
    end if;
    if horizon >= needed then
      return horizon;
    end if;
    set local lock_timeout = '2s';
    lock table mailgun_webhook.tokens in share mode;
    update mailgun_webhook.token_horizon
      set pruned_before = greatest(pruned_before, needed)
      returning pruned_before into horizon;
    return horizon;
  end
  $$;

-- The first step of a pruning, in a statement (a transaction) of its own:
-- moves the horizon to the first day a pruning with this reach keeps, when
-- that pruning has something to empty. Returns the horizon.
create function mailgun_webhook.advance_token_horizon(older_than_seconds float8, ahead_seconds float8)
  returns timestamptz
  language plpgsql
  as $$
  declare
    plan record;
  begin
    select * into plan from mailgun_webhook.token_prune_plan(older_than_seconds, ahead_seconds);
    if cardinality(plan.slots) = 0 then
      return (select pruned_before from mailgun_webhook.token_horizon);
    end if;
    return mailgun_webhook.raise_token_horizon(plan.first_live);
  end
  $$;

-- Empties every partition of consumed tokens that holds no day between
-- `older_than_seconds` ago and `ahead_seconds` ahead (by the database's
-- clock), once the horizon covers them, and returns how many it emptied.
-- A partition is emptied only when it holds rows, so an idle pruning takes no
-- lock stronger than a read.
--
-- Safe on its own, in one transaction: when the horizon must move, the share
-- lock taken for it (raise_token_horizon) is held until this transaction
-- commits, truncations included. The service calls advance_token_horizon
-- first, in a statement of its own, so that here the horizon is already
-- committed, no share lock is taken and token statements never wait for a
-- truncation. Two statements rather than a procedure with COMMIT: they work
-- the same through postgres.js, PGlite and a transaction-mode pooler.
create function mailgun_webhook.prune_tokens(older_than_seconds float8, ahead_seconds float8)
  returns int
  language plpgsql
  as $$
  declare
    plan record;
    s smallint;
  begin
    select * into plan from mailgun_webhook.token_prune_plan(older_than_seconds, ahead_seconds);
    if cardinality(plan.slots) = 0 then
      return 0;
    end if;
    perform mailgun_webhook.raise_token_horizon(plan.first_live);
    -- Emptying waits only for readers of that partition (the service writes
    -- only to live ones): a short bound, and the next pruning tries again.
    set local lock_timeout = '2s';
    foreach s in array plan.slots loop
      execute format('truncate table mailgun_webhook.%I', 'tokens_' || lpad(s::text, 2, '0'));
    end loop;
    return cardinality(plan.slots);
  end
  $$;
