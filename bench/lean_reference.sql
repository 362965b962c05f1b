-- The lean reference for `deno task bench` (issue 22): per event, as ONE
-- statement for `pgbench -M prepared`, the least a database must do to
-- record one webhook, on bench/lean_reference_tables.sql's tables:
-- the token insert (a text primary key), the document's status climb by
-- message id (a unique index), the tenant's (none match, as in the bench),
-- and the trail insert, whose jsonb payload (Mailgun's delivered example,
-- with the document's message id; a space after each colon so that pgbench
-- does not read ":name" as a variable) is parsed on every execution, as the
-- service's is: built from the doc parameter, it cannot be folded into the
-- prepared plan. Mix as bench/reference.sql: 70% delivered, 10% temporary
-- failures, 10% permanent failures, 10% complaints, on random documents.
\set doc random(1, :documents)
\set kind random(1, 10)
with event as (
  select '<bench-' || :doc || '@mg.bench.test>' as message_id,
         case when :kind <= 7 then 'DELIVERED' when :kind = 9 then 'FAILED' when :kind = 10 then 'COMPLAINED' end as status,
         case when :kind <= 7 then 2 when :kind = 9 then 3 when :kind = 10 then 4 else 0 end as rank,
         case when :kind <= 7 then 'EMAIL_DELIVERED' when :kind = 8 then 'EMAIL_TEMP_FAILED'
              when :kind = 9 then 'EMAIL_FAILED' else 'EMAIL_COMPLAINED' end as type
), token as (
  insert into lean.tokens (token, body_hash)
  values (md5(random()::text) || md5(random()::text), sha256(convert_to(random()::text, 'UTF8')))
  returning token
), document as (
  update lean.documents d set status = event.status, status_at = now()
  from event
  where d.message_id = event.message_id
    and case d.status when 'SENT' then 1 when 'DELIVERED' then 2 when 'FAILED' then 3 when 'COMPLAINED' then 4 else 0 end
        < event.rank
  returning 1
), tenant as (
  update lean.tenants t set status = event.status, status_at = now()
  from event
  where t.message_id = event.message_id
    and case t.status when 'SENT' then 1 when 'DELIVERED' then 2 when 'FAILED' then 3 when 'COMPLAINED' then 4 else 0 end
        < event.rank
  returning 1
)
insert into lean.events (event_id, event_at, message_id, type, payload)
select md5(random()::text), now(), event.message_id, event.type,
       replace('{"account": {"id": "1234567890303a4bd1f33898"},"campaigns": [],"delivery-status": {"attempt-no": 1,"certificate-verified": true,"code": 250,"description": null,"enhanced-code": null,"first-delivery-attempt-seconds": 0.062,"message": "OK","mx-host": "mailgun-com.mail.protection.outlook.com","session-seconds": 1.276,"tls": true,"utf8": true},"domain": {"name": "sample.mailgun.com"},"envelope": {"sender": "sender@sample.mailgun.com","sending-ip": "161.38.194.10","targets": "recipient@sample.mailgun.com","transport": "smtp"},"event": "delivered","flags": {"is-authenticated": true,"is-big": false,"is-routed": false,"is-system-test": false,"is-test-mode": false},"id": "MXcc2gEpS-eN8HfkOnmK2w","log-level": "info","message": {"attachments": [],"headers": {"from": "Sample Sender <sender@sample.mailgun.com>","message-id": "bench-000001@mg.bench.test","subject": "Sample webhook payload","to": "recipient@mailgun.com"},"size": 341},"primary-dkim": "smtp._domainkey.sample.mailgun.com","recipient": "recipient@sample.mailgun.com","recipient-domain": "sample.mailgun.com","recipient-provider": "Other","storage": {"key": "XXXXAQVV4uE1s5YYj9ZJq7Ge6flueUXXXX","url": "https://storage-us-east4.api.mailgun.net/v3/domains/mailgun.com/messages/BAABAAdzYub9ZBnyVMlI_YnQHR1rCYY1Yg"},"tags": ["webhook_payload"],"timestamp": 1770146431.6585283,"user-variables": []}', 'bench-000001@mg.bench.test', 'bench-' || :doc || '@mg.bench.test')::jsonb
from event, token;
