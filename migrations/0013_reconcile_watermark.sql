-- How far reconcile has read Mailgun's events, per sending domain and read
-- API: a run reads from `scanned_until` less Mailgun's margin for late events
-- (src/reconcile/reconcile.ts) instead of from the oldest row without a final
-- status, so that its cost follows the events that are new since the last
-- run. A run moves it only after it applied everything it read; a failed run,
-- a dry run or a run cut short by its row limit leaves it where it was.
--
-- `rescan_label` is the last RECONCILE_RESCAN value a full rescan was done
-- for: a new value asks for one full rescan (the scheduled job has no flags).

create table mailgun_webhook.reconcile_watermarks (
  domain text not null,
  api text not null check (api in ('logs', 'events')),
  scanned_until timestamptz not null,
  rescan_label text,
  updated_at timestamptz not null default now(),
  primary key (domain, api)
);
