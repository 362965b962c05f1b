/**
 * The signature is older than the prune horizon: some instance may have pruned
 * its token, so it can no longer be told from a replay with another body.
 */
export class SignatureExpiredError extends Error {
  constructor() {
    super("Signature timestamp is older than the tokens the database keeps (the prune horizon).");
    this.name = "SignatureExpiredError";
  }
}
