import { describe, expect, it } from 'vitest';

import { refusedForGood } from '../closeCodes';

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
