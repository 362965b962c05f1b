-- The trail is append-only, with two exceptions, each checked row by row:
-- - a delete, only when the entry's document or tenant is gone (the cascade
--   of the API's delete: its owner was deleted earlier in the same statement);
-- - an update, only inside mailgun_webhook.erase_recipient, and only of
--   recipient and event_data.

create function mailgun_webhook.refuse_trail_change() returns trigger
  language plpgsql
  as $$
  begin
    raise exception 'email_events is append-only';
  end
  $$;

create function mailgun_webhook.refuse_trail_delete() returns trigger
  language plpgsql
  as $$
  begin
    if (old.document_id is not null and exists (select 1 from documents where id = old.document_id))
       or (old.tenant_id is not null and exists (select 1 from tenants where id = old.tenant_id)) then
      raise exception 'email_events is append-only: its entries go only with their document or tenant';
    end if;
    return old;
  end
  $$;

create function mailgun_webhook.refuse_trail_update() returns trigger
  language plpgsql
  as $$
  begin
    if current_setting('email_events.erasing', true) is distinct from 'on' then
      raise exception 'email_events is append-only: erase a person''s data with mailgun_webhook.erase_recipient(address)';
    end if;
    if (new.id, new.document_id, new.tenant_id, new.type, new.mailgun_event_id, new.event_timestamp,
        new.severity, new.reason, new.received_at)
       is distinct from (old.id, old.document_id, old.tenant_id, old.type, old.mailgun_event_id,
        old.event_timestamp, old.severity, old.reason, old.received_at) then
      raise exception 'email_events is append-only: an erasure changes only recipient and event_data';
    end if;
    return new;
  end
  $$;

create trigger email_events_append_only
  before truncate on email_events
  for each statement execute function mailgun_webhook.refuse_trail_change();
create trigger email_events_delete_guard
  before delete on email_events
  for each row execute function mailgun_webhook.refuse_trail_delete();
create trigger email_events_update_guard
  before update on email_events
  for each row execute function mailgun_webhook.refuse_trail_update();

-- Every string anywhere in a jsonb value, with `address` (case-insensitive)
-- replaced by "[erased]".
create function mailgun_webhook.scrub(value jsonb, address text) returns jsonb
  language plpgsql immutable
  as $$
  declare
    -- Every character but letters and digits escaped: the address matched literally.
    pattern text := regexp_replace(address, '([^[:alnum:]])', '\\\1', 'g');
  begin
    case jsonb_typeof(value)
      when 'string' then
        return to_jsonb(regexp_replace(value #>> '{}', pattern, '[erased]', 'gi'));
      when 'object' then
        return coalesce(
          (select jsonb_object_agg(k, mailgun_webhook.scrub(v, address)) from jsonb_each(value) as e(k, v)),
          '{}'::jsonb);
      when 'array' then
        return coalesce(
          (select jsonb_agg(mailgun_webhook.scrub(v, address) order by i)
           from jsonb_array_elements(value) with ordinality as a(v, i)),
          '[]'::jsonb);
      else
        return value;
    end case;
  end
  $$;

-- A Mailgun event without what identifies its recipient: the recipient and
-- its domain, the message headers (to, from, subject; the message-id, which
-- names the message and not the person, is kept), the envelope's addresses,
-- and the stored message (storage.url and the key that opens it); then the
-- address wherever else it appears (delivery-status.message often quotes it,
-- user-variables and tags may hold it).
create function mailgun_webhook.erased_event_data(event_data jsonb, address text) returns jsonb
  language plpgsql immutable
  as $$
  declare
    erased jsonb := event_data;
  begin
    if jsonb_typeof(erased) <> 'object' then
      return mailgun_webhook.scrub(erased, address);
    end if;
    erased := erased - array['recipient', 'recipient-domain', 'storage'];
    if jsonb_typeof(erased -> 'envelope') = 'object' then
      erased := jsonb_set(erased, '{envelope}', (erased -> 'envelope') - array['sender', 'targets']);
    end if;
    if jsonb_typeof(erased #> '{message,headers}') = 'object' then
      erased := jsonb_set(erased, '{message,headers}',
        jsonb_strip_nulls(jsonb_build_object('message-id', erased #> '{message,headers,message-id}')));
    end if;
    return mailgun_webhook.scrub(erased, address);
  end
  $$;

-- Erases one person's data from the trail, for an erasure request: every
-- entry whose recipient or event_data holds `address` (case-insensitive) loses
-- its recipient (set to NULL when it holds the address) and the parts of its
-- event_data listed above. Entries stay (type, times, severity, reason: what
-- happened to the document's email, without who). Returns how many entries
-- it changed; running it again returns 0.
create function mailgun_webhook.erase_recipient(address text) returns integer
  language plpgsql
  as $$
  declare
    target text := btrim(coalesce(address, ''));
    -- How the address looks inside event_data's text, to find the entries without walking every one.
    needle text;
    changed integer;
  begin
    if position('@' in target) = 0 then
      raise exception 'An email address to erase is required.';
    end if;
    needle := lower(substr(to_jsonb(target)::text, 2, length(to_jsonb(target)::text) - 2));
    perform set_config('email_events.erasing', 'on', true);
    update email_events e
    set recipient = case when strpos(lower(e.recipient), lower(target)) > 0 then null else e.recipient end,
        event_data = mailgun_webhook.erased_event_data(e.event_data, target)
    where strpos(lower(e.recipient), lower(target)) > 0
       or strpos(lower(e.event_data::text), needle) > 0;
    get diagnostics changed = row_count;
    perform set_config('email_events.erasing', '', true);
    return changed;
  end
  $$;
