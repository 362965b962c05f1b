-- The reference for `deno task bench`: the same database work per event as
-- the service does, as ONE statement, for `pgbench -M prepared`:
-- consume a token (insert with a body hash), climb the document's status,
-- append the audit event with a payload the size of Mailgun's (the canonical
-- JSON of its delivered example; a space follows each colon so that pgbench
-- does not read ":name" as a variable, 1307 bytes). Mix: 70% delivered, 10% temporary
-- failures, 10% permanent failures, 10% complaints, on random documents.
\set doc random(1, :documents)
\set kind random(1, 10)
with token as (
  insert into mailgun_webhook.tokens (token, body_hash, signed_at, slot)
  values (md5(random()::text) || md5(random()::text), sha256(convert_to(random()::text, 'UTF8')), now(),
          mailgun_webhook.token_slot(now()))
  returning token
), event as (
  select case when :kind <= 7 then 'DELIVERED' when :kind = 9 then 'FAILED' when :kind = 10 then 'COMPLAINED' end as status,
         case when :kind <= 7 then 'EMAIL_DELIVERED' when :kind = 8 then 'EMAIL_TEMP_FAILED'
              when :kind = 9 then 'EMAIL_FAILED' else 'EMAIL_COMPLAINED' end as type
), climbed as (
  update documents d set email_status = event.status, email_status_at = now()
  from event
  where d.id = :doc and event.status is not null and mailgun_webhook.status_rank(d.email_status) < mailgun_webhook.status_rank(event.status)
  returning d.id
)
insert into email_events (document_id, type, mailgun_event_id, event_timestamp, recipient, severity, reason, event_data)
select :doc, event.type, md5(random()::text), now(), 'recipient@sample.mailgun.com', null, null,
       '{"account": {"id": "1234567890303a4bd1f33898"},"campaigns": [],"delivery-status": {"attempt-no": 1,"certificate-verified": true,"code": 250,"description": null,"enhanced-code": null,"first-delivery-attempt-seconds": 0.062,"message": "OK","mx-host": "mailgun-com.mail.protection.outlook.com","session-seconds": 1.276,"tls": true,"utf8": true},"domain": {"name": "sample.mailgun.com"},"envelope": {"sender": "sender@sample.mailgun.com","sending-ip": "161.38.194.10","targets": "recipient@sample.mailgun.com","transport": "smtp"},"event": "delivered","flags": {"is-authenticated": true,"is-big": false,"is-routed": false,"is-system-test": false,"is-test-mode": false},"id": "MXcc2gEpS-eN8HfkOnmK2w","log-level": "info","message": {"attachments": [],"headers": {"from": "Sample Sender <sender@sample.mailgun.com>","message-id": "bench-000001@mg.bench.test","subject": "Sample webhook payload","to": "recipient@mailgun.com"},"size": 341},"primary-dkim": "smtp._domainkey.sample.mailgun.com","recipient": "recipient@sample.mailgun.com","recipient-domain": "sample.mailgun.com","recipient-provider": "Other","storage": {"key": "XXXXAQVV4uE1s5YYj9ZJq7Ge6flueUXXXX","url": "https://storage-us-east4.api.mailgun.net/v3/domains/mailgun.com/messages/BAABAAdzYub9ZBnyVMlI_YnQHR1rCYY1Yg"},"tags": ["webhook_payload"],"timestamp": 1770146431.6585283,"user-variables": []}'::jsonb
from event, token;
