/**
 * BLAKE3 (hash mode, 32-byte output) in plain TypeScript, incremental: the digests the dataset
 * upload endpoints check (each chunk's and each whole file's). A straight port of the BLAKE3
 * reference implementation, with a fast path that compresses whole blocks straight from the
 * input.
 */

const IV = new Uint32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
]);
const PERMUTATION = [2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8];
const CHUNK_START = 1;
const CHUNK_END = 2;
const PARENT = 4;
const ROOT = 8;
const BLOCK_LEN = 64;
const CHUNK_LEN = 1024;

// scratch space of compress(), reused (the hasher is synchronous)
const state = new Uint32Array(16);
const m = new Uint32Array(16);
const tmp = new Uint32Array(16);

function g(a: number, b: number, c: number, d: number, x: number, y: number): void {
  const s = state;
  s[a] = (s[a] + s[b] + x) | 0;
  let t = s[d] ^ s[a];
  s[d] = (t >>> 16) | (t << 16);
  s[c] = (s[c] + s[d]) | 0;
  t = s[b] ^ s[c];
  s[b] = (t >>> 12) | (t << 20);
  s[a] = (s[a] + s[b] + y) | 0;
  t = s[d] ^ s[a];
  s[d] = (t >>> 8) | (t << 24);
  s[c] = (s[c] + s[d]) | 0;
  t = s[b] ^ s[c];
  s[b] = (t >>> 7) | (t << 25);
}

/** Compress one block (in `m`) into `state`; the first 8 words of `state` are then the new
 * chaining value (`full` also fills words 8-15, as the root output needs). */
function compress(cv: Uint32Array, counter: number, blockLen: number, flags: number, full = false): void {
  const s = state;
  s.set(cv, 0);
  s[8] = IV[0];
  s[9] = IV[1];
  s[10] = IV[2];
  s[11] = IV[3];
  s[12] = counter >>> 0;
  s[13] = Math.floor(counter / 0x100000000) >>> 0;
  s[14] = blockLen;
  s[15] = flags;
  for (let round = 0; round < 7; round++) {
    g(0, 4, 8, 12, m[0], m[1]);
    g(1, 5, 9, 13, m[2], m[3]);
    g(2, 6, 10, 14, m[4], m[5]);
    g(3, 7, 11, 15, m[6], m[7]);
    g(0, 5, 10, 15, m[8], m[9]);
    g(1, 6, 11, 12, m[10], m[11]);
    g(2, 7, 8, 13, m[12], m[13]);
    g(3, 4, 9, 14, m[14], m[15]);
    if (round < 6) {
      for (let i = 0; i < 16; i++) {
        tmp[i] = m[PERMUTATION[i]];
      }
      m.set(tmp);
    }
  }
  for (let i = 0; i < 8; i++) {
    if (full) {
      s[i + 8] ^= cv[i];
    }
    s[i] ^= s[i + 8];
  }
}

/** Load 64 bytes (little-endian words) at `offset` of `bytes` into `m`. */
function loadBlock(bytes: Uint8Array, offset: number): void {
  for (let i = 0; i < 16; i++) {
    const o = offset + i * 4;
    m[i] = bytes[o] | (bytes[o + 1] << 8) | (bytes[o + 2] << 16) | (bytes[o + 3] << 24);
  }
}

class ChunkState {
  cv = new Uint32Array(IV);
  counter: number;
  block = new Uint8Array(BLOCK_LEN);
  blockLen = 0;
  blocksCompressed = 0;

  constructor(counter: number) {
    this.counter = counter;
  }

  get length(): number {
    return this.blocksCompressed * BLOCK_LEN + this.blockLen;
  }

  private startFlag(): number {
    return this.blocksCompressed === 0 ? CHUNK_START : 0;
  }

  update(input: Uint8Array, start: number, end: number): void {
    let i = start;
    while (i < end) {
      if (this.blockLen === BLOCK_LEN) {
        loadBlock(this.block, 0);
        compress(this.cv, this.counter, BLOCK_LEN, this.startFlag());
        this.cv.set(state.subarray(0, 8));
        this.blocksCompressed++;
        this.blockLen = 0;
      }
      // whole blocks straight from the input, all but the last (it may end the chunk)
      while (this.blockLen === 0 && end - i > BLOCK_LEN) {
        loadBlock(input, i);
        compress(this.cv, this.counter, BLOCK_LEN, this.startFlag());
        this.cv.set(state.subarray(0, 8));
        this.blocksCompressed++;
        i += BLOCK_LEN;
      }
      const take = Math.min(BLOCK_LEN - this.blockLen, end - i);
      this.block.set(input.subarray(i, i + take), this.blockLen);
      this.blockLen += take;
      i += take;
    }
  }

  /** Load the last block into `m`; returns the flags of its compression. */
  finalBlock(): number {
    this.block.fill(0, this.blockLen);
    loadBlock(this.block, 0);
    return this.startFlag() | CHUNK_END;
  }

  chainingValue(): Uint32Array {
    const flags = this.finalBlock();
    compress(this.cv, this.counter, this.blockLen, flags);
    return state.slice(0, 8);
  }
}

function parentCV(left: Uint32Array, right: Uint32Array, flags = 0): Uint32Array {
  m.set(left, 0);
  m.set(right, 8);
  compress(IV, 0, BLOCK_LEN, PARENT | flags);
  return state.slice(0, 8);
}

/** An incremental BLAKE3 hasher: update() as often as needed, then hexdigest(). */
export class Blake3 {
  private _chunk = new ChunkState(0);
  private _stack: Uint32Array[] = [];

  update(input: Uint8Array): this {
    let i = 0;
    while (i < input.length) {
      if (this._chunk.length === CHUNK_LEN) {
        let cv = this._chunk.chainingValue();
        let total = this._chunk.counter + 1;
        while (total % 2 === 0) {
          cv = parentCV(this._stack.pop()!, cv);
          total /= 2;
        }
        this._stack.push(cv);
        this._chunk = new ChunkState(this._chunk.counter + 1);
      }
      const take = Math.min(CHUNK_LEN - this._chunk.length, input.length - i);
      this._chunk.update(input, i, i + take);
      i += take;
    }
    return this;
  }

  /** The 32-byte digest as 64 hex digits (the hasher can go on taking input). */
  hexdigest(): string {
    let out: Uint32Array;
    if (this._stack.length === 0) {
      const flags = this._chunk.finalBlock();
      compress(this._chunk.cv, this._chunk.counter, this._chunk.blockLen, flags | ROOT);
      out = state.slice(0, 8);
    } else {
      let cv = this._chunk.chainingValue();
      for (let i = this._stack.length - 1; i > 0; i--) {
        cv = parentCV(this._stack[i], cv);
      }
      out = parentCV(this._stack[0], cv, ROOT);
    }
    let hex = '';
    for (let i = 0; i < 8; i++) {
      const w = out[i];
      for (let b = 0; b < 4; b++) {
        hex += ((w >>> (8 * b)) & 0xff).toString(16).padStart(2, '0');
      }
    }
    return hex;
  }
}

/** BLAKE3 of `data`, as 64 hex digits. */
export function blake3Hex(data: Uint8Array): string {
  return new Blake3().update(data).hexdigest();
}
