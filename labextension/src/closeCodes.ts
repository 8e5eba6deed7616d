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

/** A room's y-protocols auth message: "denied" (`varUint(0)`, y-protocols' "permission
 * denied") is sent to a connection whose edit the server dropped (a viewer) or whose role
 * became viewer mid-session; "granted" (`varUint(1)`, the workbench's own: a stock client
 * ignores it) to one whose role became editor mid-session. */
export interface IAuthMessage {
  granted: boolean;
  reason: string;
}

/** The auth message after its type byte (from `pos` of `bytes`: `varUint(kind)`, then
 * `varString(reason)`), or null for a kind neither side knows. */
export function readAuthMessage(bytes: Uint8Array, pos: number): IAuthMessage | null {
  const readVarUint = (): number => {
    let value = 0;
    for (let shift = 0; pos < bytes.length && shift < 53; shift += 7) {
      const byte = bytes[pos++];
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) {
        return value;
      }
    }
    throw new Error('truncated auth message');
  };
  const kind = readVarUint();
  if (kind !== 0 && kind !== 1) {
    return null;
  }
  const length = readVarUint();
  if (pos + length > bytes.length) {
    throw new Error('truncated auth message');
  }
  const reason = new TextDecoder().decode(bytes.subarray(pos, pos + length));
  return { granted: kind === 1, reason };
}
