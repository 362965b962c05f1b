-- The trail is append-only, with two exceptions, each checked row by row:
-- - a delete, only when the entry's document or tenant is gone (the cascade
--   of the API's delete: its owner was deleted earlier in the same statement);
-- - an update, only inside mailgun_webhook.erase_recipient, and only of
--   recipient and event_data.
-- What lets an update through is a row of mailgun_webhook.erasing_transactions
-- naming the current transaction, which only the namespace's owner can write
-- and which erase_recipient (security definer) writes and removes itself: a
-- privilege, not a setting any session could flip.
--
-- The functions that touch the trail or the API's tables name them with the
-- schema they were found in now (the trail stays beside the API's tables), and
-- pin their search_path: a caller's search_path cannot substitute a table,
-- function or operator.

-- Transactions that are inside mailgun_webhook.erase_recipient at this moment.
create table mailgun_webhook.erasing_transactions (
  txid bigint primary key
);
revoke all on mailgun_webhook.erasing_transactions from public;

-- One email address, exactly: a dot-atom local part (RFC 5322's characters
-- but `%`, the old source-routing one that doubles as SQL's wildcard, at most
-- 64 of them), `@`, a domain of two or more dot-separated labels (letters,
-- digits, inner hyphens; the last starts with a letter), 254 characters in
-- all. ASCII only: an internationalised domain is given in its xn-- form.
-- Refuses whitespace, a second address, a quoted local part, a bare domain.
create function mailgun_webhook.is_one_address(address text) returns boolean
  language sql immutable parallel safe
  set search_path = pg_catalog, pg_temp
  as $$
    select address is not null
      and length(address) <= 254
      and length(split_part(address, '@', 1)) <= 64
      and address ~ ('^[A-Za-z0-9!#$&''*+/=?^_`{|}~-]+([.][A-Za-z0-9!#$&''*+/=?^_`{|}~-]+)*'
        || '@([A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?[.])+[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?$')
  $$;

-- A regular expression (for the case-insensitive operators) that finds the
-- address spelled as is or percent-encoded (`ann%40example.com`, as in a URL):
-- letters and digits stand for themselves, every other character for itself
-- or its %XX escape.
create function mailgun_webhook.address_core(address text) returns text
  language sql immutable parallel safe
  set search_path = pg_catalog, pg_temp
  as $$
    select string_agg(
      case when c ~ '^[A-Za-z0-9]$' then c
        else '(?:' || chr(92) || c || '|%' || upper(encode(convert_to(c, 'UTF8'), 'hex')) || ')' end,
      '' order by i)
    from unnest(string_to_array(address, null)) with ordinality as chars(c, i)
  $$;

-- The address as a WHOLE address: address_core, neither continued to its
-- left by a character a local part may hold (so `joann@`, `j.ann@`,
-- `j+ann@`, `o'ann@` are other people) nor to its right by one a domain may
-- hold (`.au`, `.community`, `-mail`). A `.` that ends a sentence, brackets,
-- quotes, spaces, `:`, `,`, `;`, `/`, `=`, `?`, `&`, `#` and the like delimit
-- it, plain or percent-encoded (`%3C`, `%20`, `%3D`). Any non-ASCII character
-- next to it continues it (an internationalised address is someone else).
create function mailgun_webhook.address_pattern(address text) returns text
  language sql immutable parallel safe
  set search_path = pg_catalog, pg_temp
  as $$
    select '(?:^|(?<=[[:ascii:]])(?<![A-Za-z0-9._%+''!$*^`|~-])'
      || '|(?<=%(?:[01][0-9A-Fa-f]|2[0236789CcFf]|3[A-Fa-f]|40|5[B-Db-d]|7[BbDd])))'
      || mailgun_webhook.address_core(address)
      || '(?![A-Za-z0-9_-]|[^[:ascii:]]|(?:[.]|%2[Ee])(?:[A-Za-z0-9_-]|[^[:ascii:]])'
      || '|%(?:2[Dd]|5[Ff]|[89A-Fa-f][0-9A-Fa-f]))'
  $$;

-- Every string anywhere in a jsonb value, object keys included, with each
-- whole-address match of `pattern` replaced by "[erased]".
create function mailgun_webhook.scrub(value jsonb, pattern text) returns jsonb
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
  as $$
  begin
    case jsonb_typeof(value)
      when 'string' then
        return to_jsonb(regexp_replace(value #>> '{}', pattern, '[erased]', 'gi'));
      when 'object' then
        return coalesce(
          (select jsonb_object_agg(regexp_replace(k, pattern, '[erased]', 'gi'), mailgun_webhook.scrub(v, pattern))
           from jsonb_each(value) as e(k, v)),
          '{}'::jsonb);
      when 'array' then
        return coalesce(
          (select jsonb_agg(mailgun_webhook.scrub(v, pattern) order by i)
           from jsonb_array_elements(value) with ordinality as a(v, i)),
          '[]'::jsonb);
      else
        return value;
    end case;
  end
  $$;

-- event_data after an erasure. In the person's own entry (`own`: its
-- recipient is the address), what identifies the recipient goes: the
-- recipient and its domain, the message headers (to, from, subject; the
-- message-id, which names the message and not the person, is kept), the
-- envelope's addresses, and the stored message (storage.url and the key that
-- opens it). In every entry, the address is then replaced wherever else it
-- stands (delivery-status.message often quotes it, user-variables and tags
-- may hold it, a header of another recipient's copy may name it).
create function mailgun_webhook.erased_event_data(event_data jsonb, own boolean, pattern text) returns jsonb
  language plpgsql immutable
  set search_path = pg_catalog, pg_temp
  as $$
  declare
    erased jsonb := event_data;
  begin
    if own and jsonb_typeof(erased) = 'object' then
      erased := erased - array['recipient', 'recipient-domain', 'storage'];
      if jsonb_typeof(erased -> 'envelope') = 'object' then
        erased := jsonb_set(erased, '{envelope}', (erased -> 'envelope') - array['sender', 'targets']);
      end if;
      if jsonb_typeof(erased #> '{message,headers}') = 'object' then
        erased := jsonb_set(erased, '{message,headers}',
          jsonb_strip_nulls(jsonb_build_object('message-id', erased #> '{message,headers,message-id}')));
      end if;
    end if;
    return mailgun_webhook.scrub(erased, pattern);
  end
  $$;

create function mailgun_webhook.refuse_trail_change() returns trigger
  language plpgsql
  set search_path = pg_catalog, pg_temp
  as $$
  begin
    raise exception 'email_events is append-only';
  end
  $$;

-- Security definer: whoever updates, the guard can read the marker table
-- (and a role without the privilege to write it cannot add itself there).
create function mailgun_webhook.refuse_trail_update() returns trigger
  language plpgsql security definer
  set search_path = pg_catalog, pg_temp
  as $$
  begin
    if not exists (select 1 from mailgun_webhook.erasing_transactions where txid = txid_current()) then
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

do $migration$
declare
  -- Where the trail and the API's tables are now (the search_path of this
  -- migration), so that no later search_path decides it.
  trail_schema text := (select n.nspname from pg_class c join pg_namespace n on n.oid = c.relnamespace
                        where c.oid = 'email_events'::regclass);
  documents_table text := (select format('%I.%I', n.nspname, c.relname) from pg_class c
                           join pg_namespace n on n.oid = c.relnamespace where c.oid = 'documents'::regclass);
  tenants_table text := (select format('%I.%I', n.nspname, c.relname) from pg_class c
                         join pg_namespace n on n.oid = c.relnamespace where c.oid = 'tenants'::regclass);
begin
  -- Security definer, so that the cascade's check can read the API's rows
  -- whoever deleted them (the service's role holds select on them).
  execute format($fn$
    create function mailgun_webhook.refuse_trail_delete() returns trigger
      language plpgsql security definer
      set search_path = pg_catalog, pg_temp
      as $body$
      begin
        if (old.document_id is not null and exists (select 1 from %1$s where id = old.document_id))
           or (old.tenant_id is not null and exists (select 1 from %2$s where id = old.tenant_id)) then
          raise exception 'email_events is append-only: its entries go only with their document or tenant';
        end if;
        return old;
      end
      $body$
  $fn$, documents_table, tenants_table);

  -- The triggers are named as an earlier release named them on this table.
  execute format('drop trigger if exists email_events_append_only on %I.email_events', trail_schema);
  execute format('drop trigger if exists email_events_delete_guard on %I.email_events', trail_schema);
  execute format('drop trigger if exists email_events_update_guard on %I.email_events', trail_schema);
  execute format($sql$
    create trigger email_events_append_only
      before truncate on %1$I.email_events
      for each statement execute function mailgun_webhook.refuse_trail_change();
    create trigger email_events_delete_guard
      before delete on %1$I.email_events
      for each row execute function mailgun_webhook.refuse_trail_delete();
    create trigger email_events_update_guard
      before update on %1$I.email_events
      for each row execute function mailgun_webhook.refuse_trail_update();
  $sql$, trail_schema);

  -- Erases one person's data from the trail, for an erasure request (see
  -- erased_event_data): only entries that hold `address` as a whole address
  -- (case-insensitive) change, the recipient column of the person's own
  -- entries becomes NULL, and no other entry is written at all. The entries
  -- stay (type, times, severity, reason: what happened to the email, without
  -- who). Returns how many entries it changed; running it again returns 0.
  -- Refuses (22023) anything that is not exactly one address.
  execute format($fn$
    create function mailgun_webhook.erase_recipient(address text) returns integer
      language plpgsql security definer
      set search_path = pg_catalog, pg_temp
      as $body$
      declare
        core text;
        pattern text;
        changed integer;
      begin
        if not coalesce(mailgun_webhook.is_one_address(address), false) then
          raise exception using
            errcode = '22023',
            message = 'An erasure needs exactly one email address (local-part@domain.tld, no spaces, no wildcards).';
        end if;
        core := mailgun_webhook.address_core(address);
        pattern := mailgun_webhook.address_pattern(address);
        insert into mailgun_webhook.erasing_transactions (txid) values (txid_current());
        update %1$I.email_events e
        set recipient = case when lower(e.recipient) = lower(address) then null
                          else regexp_replace(e.recipient, pattern, '[erased]', 'gi') end,
            event_data = mailgun_webhook.erased_event_data(
              e.event_data,
              lower(e.recipient) = lower(address) or lower(e.event_data ->> 'recipient') = lower(address),
              pattern)
        -- A cheap superset first (the address anywhere in the entry's text),
        -- then the entries that really change.
        where (e.recipient ~* core or e.event_data::text ~* core)
          and (lower(e.recipient) = lower(address)
            or e.recipient ~* pattern
            or mailgun_webhook.erased_event_data(
                 e.event_data,
                 lower(e.recipient) = lower(address) or lower(e.event_data ->> 'recipient') = lower(address),
                 pattern) is distinct from e.event_data);
        get diagnostics changed = row_count;
        delete from mailgun_webhook.erasing_transactions where txid = txid_current();
        return changed;
      end
      $body$
  $fn$, trail_schema);
end
$migration$;

-- Every role may execute a new function: erasure is granted, by name, to the
-- API's role only (SECURITY.md, "Roles and privileges").
revoke execute on function mailgun_webhook.erase_recipient(text) from public;
