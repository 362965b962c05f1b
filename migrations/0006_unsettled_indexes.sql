-- migrate: no-transaction
-- Reconcile looks for the documents and tenants whose email has no final
-- status yet (none, SENT, or one of the API's own outside the ladder). On a
-- large table nearly every row is settled: these partial indexes hold only
-- the unsettled ones, so finding them reads a few thousand index entries
-- instead of every row. Their predicate is the one find_unsettled_rows_query
-- uses, word for word (the planner matches it). Built concurrently: the
-- tables are the API's live ones.
create index concurrently if not exists documents_unsettled_idx on documents (id)
  where email_status_rank(email_status) < 2 and nullif(btrim(email_message_id, ' <>'), '') is not null;
create index concurrently if not exists tenants_unsettled_idx on tenants (id)
  where email_status_rank(email_status) < 2 and nullif(btrim(email_message_id, ' <>'), '') is not null;
