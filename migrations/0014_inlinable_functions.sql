-- body_hash and token_slot were declared immutable, but each calls a stable
-- function (convert_to; extract on a timestamptz), and PostgreSQL inlines a
-- SQL function only when its body is no more volatile than its declaration:
-- so every batch ran them through the SQL-function executor, parsing and
-- planning their bodies again for each statement (measured: about a tenth of
-- the backend's time per batch). Declared stable, which is what they are, the
-- planner inlines them into the webhook statement. Nothing indexes them, and
-- their results do not change: every token keeps its hash and slot.
alter function mailgun_webhook.body_hash(jsonb) stable;
alter function mailgun_webhook.token_slot(timestamptz) stable;
