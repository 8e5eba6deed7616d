import { describe, expect, it } from 'vitest';

import { permissionDeniedReason, refusedForGood } from '../closeCodes';

describe('refusedForGood', () => {
  it("stops on the server's refusals", () => {
    for (const code of [4400, 4403, 4404, 4413, 4429]) {
      expect(refusedForGood(code)).toBe(true);
    }
  });

  it('reconnects after being dropped for falling behind', () => {
    expect(refusedForGood(4408)).toBe(false);
  });

  it('reconnects after a network or server restart close', () => {
    for (const code of [1000, 1001, 1006, 1011]) {
      expect(refusedForGood(code)).toBe(false);
    }
  });
});

describe('permissionDeniedReason', () => {
  const encode = (kind: number, reason: string): Uint8Array => {
    const text = new TextEncoder().encode(reason);
    // y-protocols' auth message after its type byte (2): varUint(kind), varString(reason)
    const length =
      text.length < 128 ? [text.length] : [0x80 | (text.length & 0x7f), text.length >> 7];
    return new Uint8Array([2, kind, ...length, ...text]);
  };

  it("reads the server's reason", () => {
    const reason = 'read-only: your role on this project is viewer';
    expect(permissionDeniedReason(encode(0, reason), 1)).toBe(reason);
  });

  it('reads a long reason (a two-byte length) and non-ASCII text', () => {
    const reason = 'é'.repeat(100);
    expect(permissionDeniedReason(encode(0, reason), 1)).toBe(reason);
  });

  it('ignores other kinds of auth message', () => {
    expect(permissionDeniedReason(encode(1, 'x'), 1)).toBeNull();
  });

  it('refuses a truncated message', () => {
    expect(() => permissionDeniedReason(encode(0, 'viewer').subarray(0, 5), 1)).toThrow();
  });
});
