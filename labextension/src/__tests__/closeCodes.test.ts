import { describe, expect, it } from 'vitest';

import { readAuthMessage, refusedForGood } from '../closeCodes';

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

describe('readAuthMessage', () => {
  const encode = (kind: number, reason: string): Uint8Array => {
    const text = new TextEncoder().encode(reason);
    // y-protocols' auth message after its type byte (2): varUint(kind), varString(reason)
    const length =
      text.length < 128 ? [text.length] : [0x80 | (text.length & 0x7f), text.length >> 7];
    return new Uint8Array([2, kind, ...length, ...text]);
  };

  it("reads the server's reason", () => {
    const reason = 'read-only: you can view this document, not edit it';
    expect(readAuthMessage(encode(0, reason), 1)).toEqual({ granted: false, reason });
  });

  it('reads a promotion', () => {
    const reason = 'you can edit this document now';
    expect(readAuthMessage(encode(1, reason), 1)).toEqual({ granted: true, reason });
  });

  it('reads a long reason (a two-byte length) and non-ASCII text', () => {
    const reason = 'é'.repeat(100);
    expect(readAuthMessage(encode(0, reason), 1)?.reason).toBe(reason);
  });

  it('ignores other kinds of auth message', () => {
    expect(readAuthMessage(encode(2, 'x'), 1)).toBeNull();
  });

  it('refuses a truncated message', () => {
    expect(() => readAuthMessage(encode(0, 'viewer').subarray(0, 5), 1)).toThrow();
  });
});
