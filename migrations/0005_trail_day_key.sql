-- migrate: no-transaction
-- The trail's key becomes (row, Mailgun event id, UTC day of the event)
-- instead of (row, event id, event timestamp). Webhooks carry the timestamp
-- to the microsecond, the Logs API to the millisecond: the same event read
-- from both would not match under the old key, and would be recorded twice.
-- Mailgun's event ids are unique only within a day, so the day stays in the
-- key. email_events is written by every webhook: "concurrently" builds the
-- new indexes without blocking those writes (possible only outside a
-- transaction). Until the new ones are valid, the old ones keep the trail
-- exactly-once; both hold meanwhile (the new key is the stricter one).

-- A trail that already holds two entries the new key would merge (the same
-- event id on the same row and day, at two timestamps) cannot get the
-- unique index: stop before building anything, and say how to find them.
-- Entries are never deleted by this migration: the trail is append-only,
-- and which of two entries is "the" event is for a person to decide.
do $$
declare
  clashes bigint;
begin
  select count(*) into clashes from (
    select 1 from email_events
    group by document_id, tenant_id, mailgun_event_id, (event_timestamp at time zone 'UTC')::date
    having count(*) > 1
  ) c;
  if clashes > 0 then
    raise exception 'email_events holds % event ids recorded twice on the same row and day; list them with: select document_id, tenant_id, mailgun_event_id, (event_timestamp at time zone ''UTC'')::date as day, count(*) from email_events group by 1, 2, 3, 4 having count(*) > 1', clashes;
  end if;
end
$$;

create unique index concurrently if not exists email_events_document_event_day_key
  on email_events (document_id, mailgun_event_id, ((event_timestamp at time zone 'UTC')::date))
  where document_id is not null;
create unique index concurrently if not exists email_events_tenant_event_day_key
  on email_events (tenant_id, mailgun_event_id, ((event_timestamp at time zone 'UTC')::date))
  where tenant_id is not null;

-- The old keys are implied by the new ones (and the new ones serve "the
-- trail of one row" as well): dropped concurrently, so as not to wait on,
-- or block, the webhooks' inserts.
drop index concurrently if exists email_events_document_event_key;
drop index concurrently if exists email_events_tenant_event_key;
