import { describe, expect, it } from 'vitest';

import { CdcStream, chunkLengthsOf } from '../fastcdc';
import fixture from './fastcdcFixture.json';

/** The same bytes the Python side generated for the fixture (tests/storage checks it there). */
function make(kind: string, size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  if (kind === 'xorshift') {
    let x = seed >>> 0;
    for (let i = 0; i < size; i++) {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      out[i] = x & 0xff;
    }
  } else if (kind === 'csv') {
    let text = '';
    for (let i = 0; text.length < size; i++) {
      text += `${i},${(i * 7919) % 1000}\n`;
    }
    out.set(new TextEncoder().encode(text.slice(0, size)));
  }
  return out;
}

describe('FastCDC as the Python side cuts', () => {
  for (const c of fixture.cases) {
    it(`cuts ${c.kind} (${c.size} bytes) where pyfastcdc does`, () => {
      const data = make(c.kind, c.size, c.seed);
      expect(chunkLengthsOf(data)).toEqual(c.lengths);
      // streamed in uneven pieces, the chunks are the same
      const stream = new CdcStream();
      const chunks: Uint8Array[] = [];
      for (let offset = 0, step = 1; offset < data.length; step = (step * 7 + 13) % 100_003) {
        chunks.push(...stream.push(data.subarray(offset, offset + step + 1)));
        offset += step + 1;
      }
      chunks.push(...stream.finish());
      expect(chunks.map(chunk => chunk.length)).toEqual(c.lengths);
      let offset = 0;
      let differing = -1;
      for (const chunk of chunks) {
        for (let i = 0; i < chunk.length && differing < 0; i++) {
          differing = chunk[i] === data[offset + i] ? -1 : offset + i;
        }
        offset += chunk.length;
      }
      expect(differing).toBe(-1); // the chunks are the file's bytes, in order
    });
  }

  it('keeps the chunks of an unchanged region when bytes are inserted before it', () => {
    const data = make('xorshift', 2 * 1024 * 1024, 9);
    const edited = new Uint8Array(data.length + 10);
    edited.set(data.subarray(0, 500_000));
    edited.set(new Uint8Array(10).fill(7), 500_000);
    edited.set(data.subarray(500_000), 500_010);
    const before = chunkLengthsOf(data);
    const after = chunkLengthsOf(edited);
    const tail = (lengths: number[]) => lengths.slice(-10).join(',');
    expect(tail(after)).toEqual(tail(before));
  });
});
