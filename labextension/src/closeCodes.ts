/**
 * What a co-editing room's close code asks of the editor (pure, unit-tested).
 */

/** 4408: the server dropped a connection that fell too far behind; it asks the client to
 * reconnect and catch up from its state vector. */
export const CLOSE_TOO_FAR_BEHIND = 4408;

/** Whether the editor stops reconnecting after the room closed with `code`: the server's
 * refusals (4400-4499: a bad message, access revoked, the document deleted or too large,
 * awareness flooding) stand until the user acts, all but 4408. */
export function refusedForGood(code: number): boolean {
  return code >= 4400 && code < 4500 && code !== CLOSE_TOO_FAR_BEHIND;
}
