import assert from "node:assert/strict";
import fc from "fast-check";
import { quickIdentity, quickTrackedFields } from "../src/mailgun/event_fast_path.ts";
import { mailgunEventIdentitySchema, mailgunTrackedFieldsSchema } from "../src/mailgun/mailgun_event.ts";
import { loadPayload } from "./helpers/mailgun.ts";

/** A field's value: absent, null, and values on either side of each limit, of every JSON type and some that are not. */
const text = (max: number) =>
  fc.oneof(
    fc.string({ maxLength: 8 }),
    fc.constantFrom("", "x".repeat(max), "x".repeat(max + 1), "é".repeat(max), "1700000000.5", "12", "-1", "1e3"),
  );
const anything = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.boolean(),
  fc.constantFrom(0, -1, 1.5, 1700000000.123456, 253402300799, 253402300800, Infinity, -Infinity, NaN),
  fc.double(),
  fc.string({ maxLength: 4 }),
  fc.constant([]),
  fc.constant({}),
  fc.array(fc.integer(), { maxLength: 2 }),
  fc.dictionary(fc.string({ maxLength: 3 }), fc.integer(), { maxKeys: 2 }),
);
// Mostly valid values, so that whole events pass often enough for the property to say something.
const field = (max: number) => fc.oneof({ arbitrary: text(max), weight: 6 }, { arbitrary: anything, weight: 1 });
const absentOr = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

const eventData = fc.record({
  event: field(64),
  id: field(256),
  timestamp: fc.oneof({ arbitrary: fc.double({ min: 0, max: 253402300799, noNaN: true }), weight: 6 }, field(20)),
  recipient: field(2048),
  severity: field(2048),
  reason: field(2048),
  message: fc.oneof(
    anything,
    fc.record({ headers: fc.oneof(anything, fc.record({ "message-id": field(998) }, { requiredKeys: [] })) }, {
      requiredKeys: [],
    }),
  ),
  "delivery-status": fc.oneof(anything, fc.record({ code: fc.oneof(anything, fc.integer()) }, { requiredKeys: [] })),
  "user-variables": fc.oneof(anything, fc.constant('{"a":1}')),
}, { requiredKeys: [] });

Deno.test("the quick check accepts only what the zod schema accepts, with the same values", () => {
  let quick = 0;
  fc.assert(
    fc.property(absentOr(eventData), (data) => {
      const identity = quickIdentity(data);
      if (identity !== undefined) {
        const parsed = mailgunEventIdentitySchema.safeParse(data);
        assert.ok(parsed.success, `quick accepted an identity zod refuses: ${JSON.stringify(data)}`);
        assert.equal(identity.event, parsed.data.event);
        assert.equal(identity.id ?? null, parsed.data.id ?? null);
      }
      if (typeof data !== "object" || data === null) return;
      const fields = quickTrackedFields(data as Record<string, unknown>);
      if (fields === undefined) return;
      quick++;
      const parsed = mailgunTrackedFieldsSchema.safeParse(data);
      assert.ok(parsed.success, `quick accepted fields zod refuses: ${JSON.stringify(data)}`);
      assert.equal(fields.timestamp, parsed.data.timestamp);
      assert.equal(fields.recipient, parsed.data.recipient);
      assert.equal(fields.severity, parsed.data.severity);
      assert.equal(fields.reason, parsed.data.reason);
      assert.equal(fields.messageId, parsed.data.message?.headers?.["message-id"]);
    }),
    { numRuns: 20_000 },
  );
  // The generator reaches accepted cases too, or the property says nothing.
  assert.ok(quick > 100, `only ${quick} quick acceptances`);
});

Deno.test("the quick check takes Mailgun's own payloads, so that the schema runs only for unusual ones", () => {
  for (const name of ["delivered", "failed-permanent", "failed-temporary", "complained"] as const) {
    const payload = loadPayload(name);
    assert.notEqual(quickIdentity(payload), undefined, name);
    assert.notEqual(quickTrackedFields(payload), undefined, name);
  }
});

Deno.test("a timestamp sent as text, or a value of another type, is left to the schema", () => {
  const payload = loadPayload("delivered");
  assert.equal(quickTrackedFields({ ...payload, timestamp: String(payload.timestamp) }), undefined);
  assert.equal(quickTrackedFields({ ...payload, recipient: 5 }), undefined);
  assert.equal(quickTrackedFields({ ...payload, "delivery-status": { code: Infinity } }), undefined);
  assert.equal(quickIdentity({ ...payload, event: "" }), undefined);
  assert.equal(quickIdentity([]), undefined);
});
