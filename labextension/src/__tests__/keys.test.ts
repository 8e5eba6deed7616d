import { describe, expect, it } from 'vitest';

import { listKeyTarget } from '../keys';

describe('listKeyTarget', () => {
  it('steps with the arrows and stops at the ends', () => {
    expect(listKeyTarget('ArrowDown', 0, 3)).toBe(1);
    expect(listKeyTarget('ArrowDown', 2, 3)).toBe(2);
    expect(listKeyTarget('ArrowUp', 1, 3)).toBe(0);
    expect(listKeyTarget('ArrowUp', 0, 3)).toBe(0);
  });

  it('jumps with Home and End', () => {
    expect(listKeyTarget('Home', 2, 3)).toBe(0);
    expect(listKeyTarget('End', 0, 3)).toBe(2);
  });

  it('enters the list from nothing focused', () => {
    expect(listKeyTarget('ArrowDown', -1, 3)).toBe(0);
    expect(listKeyTarget('ArrowUp', -1, 3)).toBe(0);
  });

  it('ignores other keys and empty lists', () => {
    expect(listKeyTarget('Enter', 0, 3)).toBeNull();
    expect(listKeyTarget('a', 0, 3)).toBeNull();
    expect(listKeyTarget('ArrowDown', 0, 0)).toBeNull();
  });
});
