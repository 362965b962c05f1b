-- migrate: no-transaction
-- migrate: host-tables
-- Indexes on the API's live tables, built "concurrently" so that the API's
-- writes go on meanwhile (possible only outside a transaction). Their names
-- carry the service's prefix: an index's name shares the table's schema. The
-- runner rebuilds an index that a failed earlier build left INVALID.
--
-- Webhooks look rows up by message id (stored with or without angle
-- brackets; the lookup asks for both forms, which a plain index serves).
create index concurrently if not exists mailgun_webhook_documents_message_id_idx on documents (email_message_id);
create index concurrently if not exists mailgun_webhook_tenants_message_id_idx on tenants (email_message_id);

-- Reconcile looks for the rows whose email has no final status yet. On a
-- large table nearly every row is settled: these partial indexes hold only
-- the unsettled ones. Their predicate is find_unsettled_rows_query's, word for
-- word (the planner matches it).
create index concurrently if not exists mailgun_webhook_documents_unsettled_idx on documents (id)
  where mailgun_webhook.status_rank(email_status) < 2 and nullif(btrim(email_message_id, ' <>'), '') is not null;
create index concurrently if not exists mailgun_webhook_tenants_unsettled_idx on tenants (id)
  where mailgun_webhook.status_rank(email_status) < 2 and nullif(btrim(email_message_id, ' <>'), '') is not null;
