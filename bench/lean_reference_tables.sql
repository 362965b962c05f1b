-- The lean reference's tables (issue 22), made in the bench's own database
-- beside the service's: the same work per event as the service's, on tables
-- with only the keys that work needs. No foreign keys, no partitions, no
-- triggers, no partial or expression indexes, one form of the message id.
create schema lean;

-- A consumed token, bound to its body's hash: the token is the key.
create table lean.tokens (
  token text primary key,
  body_hash bytea not null
);

-- The documents and tenants the events climb, looked up by message id (unique):
-- the status is in no index, so that its update can be HOT.
create table lean.documents (
  message_id text primary key,
  status text not null,
  status_at timestamptz
);
create table lean.tenants (
  message_id text primary key,
  status text not null,
  status_at timestamptz
);

-- The trail: one entry per event, keyed on Mailgun's event id and time.
create table lean.events (
  event_id text not null,
  event_at timestamptz not null,
  message_id text not null,
  type text not null,
  payload jsonb not null,
  unique (event_id, event_at)
);

-- The same documents as the service's (the bench seeds those first); tenants stay empty, as the service's do.
insert into lean.documents (message_id, status) select email_message_id, 'SENT' from documents;
