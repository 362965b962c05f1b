-- Empties every partition of consumed tokens that holds no day between
-- `older_than_seconds` ago and `ahead_seconds` ahead (by the database's
-- clock), and returns how many it emptied. A partition is emptied only when
-- it holds rows, so an idle pruning takes no lock stronger than a read.
-- Refuses a window of 16 days or more, which would leave no partition out of it.
create function mailgun_webhook.prune_tokens(older_than_seconds float8, ahead_seconds float8)
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
      raise exception 'a token window of % days leaves no partition of mailgun_webhook.tokens to prune', last_day - first_day + 1;
    end if;
    select array_agg(mailgun_webhook.token_slot(to_timestamp(d * 86400.0)))
      into live from generate_series(first_day, last_day) d;
    for s in 0..15 loop
      if not s = any(live) and exists (select 1 from mailgun_webhook.tokens where slot = s) then
        execute format('truncate table mailgun_webhook.%I', 'tokens_' || lpad(s::text, 2, '0'));
        emptied := emptied + 1;
      end if;
    end loop;
    return emptied;
  end
  $$;
