-- migrate: no-transaction
-- Webhooks look rows up by message id (stored with or without angle brackets;
-- the lookup asks for both forms, which a plain index serves). documents and
-- tenants are the API's live tables: "concurrently" builds without blocking
-- their writes, which is possible only outside a transaction. The runner
-- rebuilds an index that a failed earlier build left INVALID.
create index concurrently if not exists documents_email_message_id_idx on documents (email_message_id);
create index concurrently if not exists tenants_email_message_id_idx on tenants (email_message_id);
