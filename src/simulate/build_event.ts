import { bareMessageId } from "../mailgun/parse_event_data.ts";

/** The events `deno task simulate` can send. */
export const SIMULATED_KINDS = ["delivered", "failed", "temporary-failure", "complained", "opened"] as const;

/** One of {@link SIMULATED_KINDS}. */
type SimulatedKind = typeof SIMULATED_KINDS[number];

/** True when `value` names a kind that can be simulated. */
export function isSimulatedKind(value: string): value is SimulatedKind {
  return (SIMULATED_KINDS as readonly string[]).includes(value);
}

/** Details of a simulated event; each has a realistic default. */
interface SimulateOptions {
  recipient?: string;
  /** When the event happened; default now. */
  at?: Date;
}

/**
 * Builds the event-data Mailgun would send for `kind` and `messageId`,
 * shaped like the examples in Mailgun's documentation: a fresh event id
 * (22 url-safe characters, like Mailgun's), a timestamp in seconds with a
 * fraction, the Message-ID without angle brackets, and the delivery-status,
 * severity and reason that kind of event carries.
 */
export function buildEvent(kind: SimulatedKind, messageId: string, options: SimulateOptions = {}) {
  const id = bareMessageId(messageId);
  const recipient = options.recipient ?? "recipient@example.com";
  const recipientDomain = recipient.split("@").pop() ?? "example.com";
  const senderDomain = id.split("@").pop() || "mg.example.com";
  const timestamp = (options.at ?? new Date()).getTime() / 1000;
  const base = {
    id: eventId(),
    timestamp,
    "log-level": "info",
    recipient,
    "recipient-domain": recipientDomain,
    tags: ["simulated"],
    campaigns: [],
    "user-variables": {},
    flags: { "is-authenticated": true, "is-routed": false, "is-big": false, "is-test-mode": false },
    message: {
      headers: {
        "message-id": id,
        from: `Comprobify <no-reply@${senderDomain}>`,
        to: recipient,
        subject: "Your invoice",
      },
      attachments: [],
      size: 4096,
    },
    envelope: { sender: `no-reply@${senderDomain}`, targets: recipient, transport: "smtp" },
  };
  switch (kind) {
    case "delivered":
      return {
        ...base,
        event: "delivered",
        "delivery-status": {
          "attempt-no": 1,
          code: 250,
          message: "OK",
          description: "",
          "session-seconds": 0.4,
          tls: true,
          "certificate-verified": true,
        },
      };
    case "failed":
      return {
        ...base,
        event: "failed",
        "log-level": "error",
        severity: "permanent",
        reason: "bounce",
        "delivery-status": {
          "attempt-no": 1,
          code: 550,
          message: "5.1.1 The email account that you tried to reach does not exist.",
          description: "",
          "bounce-type": "hard",
        },
      };
    case "temporary-failure":
      return {
        ...base,
        event: "failed",
        "log-level": "warn",
        severity: "temporary",
        reason: "generic",
        "delivery-status": {
          "attempt-no": 1,
          code: 452,
          message: "4.2.2 The email account that you tried to reach is over quota.",
          description: "",
          "retry-seconds": 600,
        },
      };
    case "complained":
      return { ...base, event: "complained", "log-level": "warn" };
    case "opened":
      return {
        ...base,
        event: "opened",
        ip: "192.0.2.10",
        geolocation: { country: "US", region: "CA", city: "San Francisco" },
        "client-info": { "client-type": "browser", "client-os": "Linux", "device-type": "desktop" },
      };
  }
}

/** 16 random bytes as 22 url-safe base64 characters, like Mailgun's event ids. */
function eventId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}
