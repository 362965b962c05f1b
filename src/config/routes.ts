/** The webhook's path, as registered in Mailgun. */
export const WEBHOOK_PATH = "/v1/mailgun/webhook";
/** The health check's path. */
export const HEALTH_PATH = "/healthz";
