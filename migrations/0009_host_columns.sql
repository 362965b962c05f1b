-- migrate: host-tables
-- The one column the service adds to the API's tables: the time of the event
-- that set email_status. With it, a row's status and its time are a pure
-- function of the set of its events, whatever their arrival order. Nullable,
-- no default: adding it rewrites nothing and changes no row.
alter table documents add column if not exists email_status_at timestamptz;
alter table tenants add column if not exists email_status_at timestamptz;
