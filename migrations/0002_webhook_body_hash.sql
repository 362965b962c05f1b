-- The hash a signature token is bound to: SHA-256 of the event-data's jsonb
-- text, which is canonical (keys in a fixed order, fixed spacing), so a retry
-- whose event-data was formatted or ordered differently still matches. Made
-- by the database, where there is spare CPU, rather than on the service's
-- single JavaScript thread.
create or replace function webhook_body_hash(event_data jsonb) returns bytea
  language sql immutable parallel safe
  as $$ select sha256(convert_to(event_data::text, 'UTF8')) $$;
