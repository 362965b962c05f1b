import { MalformedBodyError } from "./mailgun_errors.ts";

/** The two parts of a Mailgun webhook body, not yet checked. */
export interface WebhookBody {
  /** Subaccount events carry `parent-signature` inside this block. */
  signature: unknown;
  eventData: unknown;
}

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Parses the JSON body; throws a {@link MalformedBodyError} when it is not UTF-8 JSON. */
export function parseWebhookBody(bytes: Uint8Array): WebhookBody {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(bytes));
  } catch (error) {
    throw new MalformedBodyError("Body is not JSON.", { cause: error });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    return { signature: undefined, eventData: undefined };
  }
  const record = parsed as Record<string, unknown>;
  return {
    signature: record["signature"],
    eventData: record["event-data"],
  };
}
