/** The signature's token was already spent with another body: a replay, or a captured signature reused. */
export class TokenReusedError extends Error {
  constructor() {
    super("Signature token was already used with a different body.");
    this.name = "TokenReusedError";
  }
}
