/**
 * "Commit to dataset..." on a folder or a .csv/.parquet file of the file browser: ask for the
 * project, the dataset name and a message, then commit over the resumable upload endpoints
 * (hash, declare, send only the missing chunks, publish), with progress and a Cancel button in
 * a JupyterLab notification.
 */
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IProject, listProjects, messageOf } from './api';
import { Blake3 } from './blake3';
import { CdcStream } from './fastcdc';
import {
  BATCH_BYTES,
  BEAT_MS,
  CommitPhase,
  IUnderWay,
  datasetNameProblem,
  frameChunks,
  isTransient,
  pathInDataset,
  progressText,
  retryDelay,
  SEND_TRIES,
  suggestDatasetName,
  thisTab,
  underWay
} from './commitFormat';
import { abortUpload, commitUpload, IUploadFile, sendChunks, startUpload } from './registryApi';
import { canRequest } from './registryFormat';
import { h } from './dom';

/** What the user chose in the dialog. */
export interface ICommitRequest {
  project: string;
  dataset: string;
  message: string;
}

class CommitForm extends Widget {
  constructor(trans: TranslationBundle, path: string, projects: IProject[], preferred: string) {
    super();
    this.addClass('jp-WorkbenchCommit');
    this.project = h(
      'select',
      { class: 'jp-mod-styled', name: 'project' },
      ...projects.map(p => h('option', { value: p.slug }, p.name))
    ) as HTMLSelectElement;
    if (projects.some(p => p.slug === preferred)) {
      this.project.value = preferred;
    }
    this.datasetInput = h('input', {
      class: 'jp-mod-styled',
      name: 'dataset'
    }) as HTMLInputElement;
    this.datasetInput.value = suggestDatasetName(path);
    this.message = h('input', {
      class: 'jp-mod-styled',
      name: 'message'
    }) as HTMLInputElement;
    this.message.value = trans.__('%1 from the lab', path.split('/').pop() ?? path);
    this.node.append(
      h('p', {}, trans.__('Commit %1 as a new version of a dataset.', path)),
      h('label', {}, trans.__('Project'), this.project),
      h('label', {}, trans.__('Dataset (new or existing)'), this.datasetInput),
      h('label', {}, trans.__('Message'), this.message)
    );
  }

  getValue(): ICommitRequest {
    return {
      project: this.project.value,
      dataset: this.datasetInput.value.trim(),
      message: this.message.value.trim()
    };
  }

  readonly project: HTMLSelectElement;
  readonly datasetInput: HTMLInputElement;
  readonly message: HTMLInputElement;
}

/** Ask for project, dataset and message; null when cancelled. */
export async function askCommit(
  trans: TranslationBundle,
  path: string,
  preferredProject: string
): Promise<ICommitRequest | null> {
  let projects: IProject[];
  try {
    projects = (await listProjects()).items.filter(p => !p.archived && canRequest(p.my_role));
  } catch (error) {
    await showDialog({
      title: trans.__('Cannot list your projects'),
      body: messageOf(error),
      buttons: [Dialog.okButton()]
    });
    return null;
  }
  if (!projects.length) {
    await showDialog({
      title: trans.__('No project to commit to'),
      body: trans.__(
        'You can commit to projects where you are an editor. Create one in the Workbench sidebar first.'
      ),
      buttons: [Dialog.okButton()]
    });
    return null;
  }
  for (;;) {
    const result = await showDialog({
      title: trans.__('Commit to dataset'),
      body: new CommitForm(trans, path, projects, preferredProject),
      buttons: [Dialog.cancelButton(), Dialog.okButton({ label: trans.__('Commit') })],
      focusNodeSelector: 'input[name=dataset]'
    });
    if (!result.button.accept || !result.value) {
      return null;
    }
    const problem = datasetNameProblem(result.value.dataset);
    if (!problem) {
      return result.value;
    }
    await showDialog({
      title: trans.__('Invalid dataset name'),
      body: trans.__(problem),
      buttons: [Dialog.okButton()]
    });
  }
}

/** Every file under `path` (itself, if a file), hidden ones skipped as the file browser does. */
async function listFiles(contents: Contents.IManager, path: string): Promise<string[]> {
  const model = await contents.get(path, { content: true });
  if (model.type !== 'directory') {
    return [model.path];
  }
  const out: string[] = [];
  for (const item of model.content as Contents.IModel[]) {
    if (item.name.startsWith('.')) {
      continue;
    }
    out.push(...(await listFiles(contents, item.path)));
  }
  return out;
}

/** Read a file of the server's tree in pieces (never whole in memory). */
async function* readFile(
  path: string,
  signal: AbortSignal,
  settings: ServerConnection.ISettings
): AsyncGenerator<Uint8Array> {
  const url = URLExt.join(settings.baseUrl, 'files', URLExt.encodeParts(path));
  const response = await ServerConnection.makeRequest(url, { signal, cache: 'no-cache' }, settings);
  if (!response.ok || !response.body) {
    throw new Error(`${path}: ${response.status} ${response.statusText}`);
  }
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) {
      return;
    }
    yield value;
  }
}

/** Sleep ``ms``, or reject at once when ``signal`` aborts. */
function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = window.setTimeout(resolve, ms);
    signal.addEventListener('abort', () => {
      window.clearTimeout(timer);
      reject(new DOMException('cancelled', 'AbortError'));
    });
  });
}

/** The file's chunks as they are read, cut as the Python side cuts them (FastCDC). */
async function* chunksOf(pieces: AsyncGenerator<Uint8Array>): AsyncGenerator<Uint8Array> {
  const stream = new CdcStream();
  for await (const piece of pieces) {
    for (const chunk of stream.push(piece)) {
      yield chunk;
    }
  }
  for (const chunk of stream.finish()) {
    yield chunk;
  }
}

export type Progress = (phase: CommitPhase, done: number, total: number) => void;

/** A commit cut off by a lost connection: committing again sends only what is missing. */
export class ResumableError extends Error {}

/** Commit `path` (a folder or a file of the server's tree) as a new version; resolves to the
 * version number. `signal` cancels (the upload is then abandoned on the server). */
export async function commitPath(
  contents: Contents.IManager,
  path: string,
  request: ICommitRequest,
  progress: Progress,
  signal: AbortSignal,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<number> {
  const { project, dataset, message } = request;
  progress('listing', 0, 0);
  const root = await contents.get(path, { content: false });
  const isDir = root.type === 'directory';
  const files = await listFiles(contents, path);
  const sizes = await Promise.all(
    files.map(f => contents.get(f, { content: false }).then(m => Number(m.size ?? 0)))
  );
  const total = sizes.reduce((a, b) => a + b, 0);
  // 1. hash: each chunk and each whole file
  const manifest: IUploadFile[] = [];
  let read = 0;
  for (const file of files) {
    const whole = new Blake3();
    const chunks: [string, number][] = [];
    let size = 0;
    for await (const chunk of chunksOf(readFile(file, signal, settings))) {
      signal.throwIfAborted();
      whole.update(chunk);
      chunks.push([new Blake3().update(chunk).hexdigest(), chunk.length]);
      size += chunk.length;
      read += chunk.length;
      progress('hashing', read, Math.max(total, read));
    }
    manifest.push({ path: pathInDataset(path, isDir, file), size, digest: whole.hexdigest(), chunks });
  }
  // 2. declare; send only what the server lacks
  const upload = await startUpload(project, dataset, manifest, signal);
  try {
    const missing = new Set(upload.missing);
    const lengths = new Map<string, number>();
    for (const file of manifest) {
      for (const [digest, length] of file.chunks) {
        if (missing.has(digest)) {
          lengths.set(digest, length);
        }
      }
    }
    const missingBytes = [...lengths.values()].reduce((a, b) => a + b, 0);
    let sent = 0;
    let batch: { digest: string; data: Uint8Array }[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (!batch.length) {
        return;
      }
      const body = frameChunks(batch);
      for (let attempt = 0; ; attempt++) {
        try {
          await sendChunks(project, dataset, upload.id, body, signal);
          break;
        } catch (error) {
          const status = (error as { status?: number }).status ?? -1;
          if (signal.aborted || !isTransient(status) || attempt + 1 >= SEND_TRIES) {
            throw error;
          }
          await wait(retryDelay(attempt), signal);
        }
      }
      sent += batchBytes;
      progress('sending', sent, missingBytes);
      batch = [];
      batchBytes = 0;
    };
    progress('sending', 0, missingBytes);
    for (let f = 0; f < files.length && missing.size; f++) {
      const wanted = manifest[f].chunks;
      if (!wanted.some(([d]) => missing.has(d))) {
        continue;
      }
      let index = 0;
      for await (const chunk of chunksOf(readFile(files[f], signal, settings))) {
        signal.throwIfAborted();
        const digest = wanted[index++]?.[0];
        if (digest && missing.has(digest)) {
          missing.delete(digest);
          batch.push({ digest, data: chunk });
          batchBytes += chunk.length;
          if (batchBytes >= BATCH_BYTES) {
            await flush();
          }
        }
      }
    }
    await flush();
    // 3. publish
    signal.throwIfAborted();
    progress('committing', 1, 1);
    const result = await commitUpload(project, dataset, upload.id, message);
    return result.version.version;
  } catch (error) {
    const status = (error as { status?: number }).status ?? -1;
    if (signal.aborted || !isTransient(status)) {
      void abortUpload(project, dataset, upload.id).catch(() => undefined);
      throw error;
    }
    // the connection is gone: the batches already sent are stored; a new commit of the same
    // files sends only what is still missing
    throw new ResumableError(
      `${messageOf(error)} Resume to go on: the chunks already sent are kept.`
    );
  }
}

/** Ask, then commit with a progress notification (Cancel stops it); returns the version or null. */
export async function commitWithProgress(
  trans: TranslationBundle,
  contents: Contents.IManager,
  path: string,
  preferredProject: string,
  onDone: (project: string, dataset: string) => void
): Promise<number | null> {
  const request = await askCommit(trans, path, preferredProject);
  if (!request) {
    return null;
  }
  return runCommit(trans, contents, path, request, onDone);
}

/**
 * Offer again, as notifications with "Resume" and "Forget", the commits this browser started and
 * never saw end (the page was reloaded or closed under them). Resuming commits the same path
 * with the same project, dataset and message; only the chunks the server still lacks are sent.
 */
export function offerInterruptedCommits(
  trans: TranslationBundle,
  contents: Contents.IManager,
  onDone: (project: string, dataset: string) => void
): void {
  for (const item of underWay().takeInterrupted(thisTab(), Date.now())) {
    const target = `${item.project}/${item.dataset}`;
    let id = '';
    const forget = () => Notification.dismiss(id);
    id = Notification.emit(
      trans.__(
        'The commit of %1 to %2 was interrupted (the page was closed or reloaded).',
        item.path,
        target
      ),
      'warning',
      {
        autoClose: false,
        actions: [
          {
            label: trans.__('Resume'),
            caption: trans.__('Commit it again: only what the server still lacks is sent'),
            callback: () => {
              forget();
              void runCommit(trans, contents, item.path, item, onDone);
            }
          },
          { label: trans.__('Forget'), caption: trans.__('Do not commit it'), callback: forget }
        ]
      }
    );
  }
}

/** Commit with a progress notification (Cancel stops it); on a lost connection the failure
 * notification offers "Resume". Returns the version, or null. */
export async function runCommit(
  trans: TranslationBundle,
  contents: Contents.IManager,
  path: string,
  request: ICommitRequest,
  onDone: (project: string, dataset: string) => void
): Promise<number | null> {
  const remembered: IUnderWay = {
    path,
    project: request.project,
    dataset: request.dataset,
    message: request.message,
    tab: thisTab(),
    beat: Date.now()
  };
  const commits = underWay();
  commits.add(remembered);
  // other tabs of the lab leave a commit alone while this page says it runs it
  const beating = window.setInterval(
    () => commits.add({ ...remembered, beat: Date.now() }),
    BEAT_MS
  );
  const forget = () => {
    window.clearInterval(beating);
    commits.remove(remembered);
  };
  const controller = new AbortController();
  const target = `${request.project}/${request.dataset}`;
  const cancel = {
    label: trans.__('Cancel'),
    caption: trans.__('Stop the upload'),
    callback: () => controller.abort()
  };
  const id = Notification.emit(trans.__('Committing %1 to %2…', path, target), 'in-progress', {
    autoClose: false,
    actions: [cancel]
  });
  let last = 0;
  const progress: Progress = (phase, done, total) => {
    const now = Date.now();
    if (now - last < 150 && phase !== 'committing' && done < total) {
      return;
    }
    last = now;
    Notification.update({
      id,
      message: trans.__('%1 → %2: %3', path, target, progressText(phase, done, total, trans)),
      type: 'in-progress',
      autoClose: false,
      actions: [cancel]
    });
  };
  try {
    const version = await commitPath(contents, path, request, progress, controller.signal);
    forget();
    Notification.update({
      id,
      message: trans.__('Committed %1 as %2 v%3.', path, target, version),
      type: 'success',
      autoClose: 8000,
      actions: []
    });
    onDone(request.project, request.dataset);
    return version;
  } catch (error) {
    forget();
    const cancelled = controller.signal.aborted;
    const resumable = !cancelled && error instanceof ResumableError;
    const resume = {
      label: trans.__('Resume'),
      caption: trans.__('Commit it again: only what the server still lacks is sent'),
      callback: () => {
        Notification.dismiss(id);
        void runCommit(trans, contents, path, request, onDone);
      }
    };
    Notification.update({
      id,
      message: cancelled
        ? trans.__('Commit of %1 cancelled: no version was made.', path)
        : trans.__('Commit of %1 failed: %2', path, messageOf(error)),
      type: cancelled ? 'warning' : 'error',
      autoClose: cancelled ? 5000 : false,
      actions: resumable ? [resume] : []
    });
    return null;
  }
}
