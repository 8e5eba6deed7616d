/**
 * Pure parts of "Commit to dataset..." (no DOM, no JupyterLab imports: unit-tested as is): which
 * file-browser items qualify, the dataset name a path suggests, the paths inside the dataset,
 * the chunk batches' framing and the progress text (chunks are cut by fastcdc.ts, as the Python
 * side cuts them).
 */

/** Framed chunks per POST, as the Python client sends them. */
export const BATCH_BYTES = 8 * 1024 * 1024;

const DATA_FILE = /\.(csv|parquet)$/i;
const DATASET_NAME = /^[a-z0-9][a-z0-9._-]{0,99}$/;

/** Folders, .csv and .parquet files can be committed. */
export function isCommittable(item: { name: string; type: string }): boolean {
  return item.type === 'directory' || DATA_FILE.test(item.name);
}

/** The last part of a path. */
export function baseName(path: string): string {
  const parts = path.split('/').filter(Boolean);
  return parts[parts.length - 1] ?? '';
}

/** A valid dataset name from a file or folder name: "Sales 2026.csv" -> "sales-2026". */
export function suggestDatasetName(path: string): string {
  const name = baseName(path).replace(DATA_FILE, '');
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .replace(/-+$/, '')
    .slice(0, 100);
  return slug || 'dataset';
}

/** Why `name` is not a valid dataset name, or null. */
export function datasetNameProblem(name: string): string | null {
  if (!name) {
    return 'Give the dataset a name.';
  }
  return DATASET_NAME.test(name)
    ? null
    : 'A dataset name is lowercase letters, digits, ".", "_" or "-" (at most 100), starting with a letter or digit.';
}

/** The path of `file` inside the dataset: relative to the committed folder, or the file's name. */
export function pathInDataset(root: string, rootIsDirectory: boolean, file: string): string {
  if (!rootIsDirectory) {
    return baseName(file);
  }
  const prefix = root.replace(/\/+$/, '');
  return prefix && file.startsWith(prefix + '/') ? file.slice(prefix.length + 1) : file;
}

/** 64 hex digits -> 32 bytes. */
export function hexToBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** One POST body of chunks: per chunk its 32-byte digest, its length (4 bytes, big-endian),
 * then its bytes. */
export function frameChunks(chunks: { digest: string; data: Uint8Array }[]): Uint8Array {
  const total = chunks.reduce((n, c) => n + 36 + c.data.length, 0);
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(hexToBytes(chunk.digest), offset);
    view.setUint32(offset + 32, chunk.data.length, false);
    out.set(chunk.data, offset + 36);
    offset += 36 + chunk.data.length;
  }
  return out;
}

/** The part of a translation bundle these helpers use. */
export interface ITrans {
  __(msg: string, ...args: any[]): string;
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

function size(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${UNITS[unit]}`;
}

export type CommitPhase = 'listing' | 'hashing' | 'sending' | 'committing';

/** "Sending 12.0 MiB of 40.0 MiB (30%)" and the like. */
export function progressText(
  phase: CommitPhase,
  done: number,
  total: number,
  trans: ITrans
): string {
  const percent = total > 0 ? Math.min(100, Math.floor((100 * done) / total)) : 100;
  switch (phase) {
    case 'listing':
      return trans.__('Listing the files…');
    case 'hashing':
      return trans.__('Reading %1 of %2 (%3%)', size(done), size(total), percent);
    case 'sending':
      return trans.__('Sending %1 of %2 (%3%)', size(done), size(total), percent);
    default:
      return trans.__('Publishing the version…');
  }
}

/** Failures worth sending a batch again for: no answer at all (0), overload (429), 5xx. */
export function isTransient(status: number): boolean {
  return status === 0 || status === 429 || status >= 500;
}

/** Tries of one chunk batch before the commit stops (the upload is then kept for a resume). */
export const SEND_TRIES = 5;

/** The wait before try ``attempt + 1`` (ms): 0.5 s, doubling, at most 8 s. */
export function retryDelay(attempt: number): number {
  return Math.min(8000, 500 * 2 ** attempt);
}

/** What a commit needs to run again: the server-tree path and the dialog's answers; which
 * browser tab runs it and when that tab last said it still does. */
export interface IUnderWay {
  path: string;
  project: string;
  dataset: string;
  message: string;
  tab: string;
  beat: number;
}

/** The part of the Web Storage API used here (localStorage in the lab). */
export interface IKeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const UNDER_WAY_KEY = 'jupyter-workbench:commits-under-way';
const FIELDS = ['path', 'project', 'dataset', 'message', 'tab'];

/** A running commit says so this often; one silent for `STALE_MS` has lost its tab. */
export const BEAT_MS = 5_000;
export const STALE_MS = 20_000;

const sameCommit = (a: IUnderWay, b: IUnderWay): boolean =>
  a.path === b.path && a.project === b.project && a.dataset === b.dataset;

/**
 * The commits this browser has under way, kept in `store` (shared by the lab's tabs) until each
 * ends, so that one cut off by a reload or a closed tab can be offered again when the lab opens
 * next. Unreadable or full storage is no error: there is then nothing to offer, and commits go on.
 */
export class CommitsUnderWay {
  constructor(store: IKeyValueStore | null) {
    this._store = store;
  }

  list(): IUnderWay[] {
    try {
      const found: unknown = JSON.parse(this._store?.getItem(UNDER_WAY_KEY) ?? '[]');
      return Array.isArray(found)
        ? found.filter(
            (u): u is IUnderWay =>
              !!u &&
              typeof u === 'object' &&
              FIELDS.every(k => typeof u[k] === 'string') &&
              typeof u.beat === 'number'
          )
        : [];
    } catch {
      return [];
    }
  }

  /** Remember `item`, or say it still runs (replacing the entry of the same path and dataset). */
  add(item: IUnderWay): void {
    this._write([...this.list().filter(u => !sameCommit(u, item)), item]);
  }

  remove(item: IUnderWay): void {
    this._write(this.list().filter(u => !sameCommit(u, item)));
  }

  /**
   * The commits whose page is gone, forgotten at once (each is offered once): those of this tab
   * (`tab`: the page before a reload ran them) and those of other tabs silent since
   * `now - STALE_MS` (closed or crashed). Commits another open tab still runs stay.
   */
  takeInterrupted(tab: string, now: number): IUnderWay[] {
    const items = this.list();
    const gone = (u: IUnderWay) => u.tab === tab || u.beat < now - STALE_MS;
    this._write(items.filter(u => !gone(u)));
    return items.filter(gone);
  }

  private _write(items: IUnderWay[]): void {
    try {
      if (items.length) {
        this._store?.setItem(UNDER_WAY_KEY, JSON.stringify(items));
      } else {
        this._store?.removeItem(UNDER_WAY_KEY);
      }
    } catch {
      // full or disabled storage: nothing to offer after a reload
    }
  }

  private _store: IKeyValueStore | null;
}

const TAB_KEY = 'jupyter-workbench:tab';

/** This browser tab's id: kept in sessionStorage, which a reload keeps and a new tab does not. */
export function tabId(session: IKeyValueStore | null, fresh: () => string): string {
  try {
    const known = session?.getItem(TAB_KEY);
    if (known) {
      return known;
    }
    const id = fresh();
    session?.setItem(TAB_KEY, id);
    return id;
  } catch {
    return fresh();
  }
}

type WebStorages = { localStorage?: Storage; sessionStorage?: Storage };

/** The commits under way in this browser's localStorage (none remembered where it is unusable). */
export function underWay(): CommitsUnderWay {
  try {
    return new CommitsUnderWay((globalThis as WebStorages).localStorage ?? null);
  } catch {
    return new CommitsUnderWay(null);
  }
}

/** This tab's id (see `tabId`), made once per page. */
export function thisTab(): string {
  if (!thisTabId) {
    let session: Storage | null = null;
    try {
      session = (globalThis as WebStorages).sessionStorage ?? null;
    } catch {
      session = null;
    }
    const fresh = () => `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    thisTabId = tabId(session, fresh);
  }
  return thisTabId;
}

let thisTabId = '';
