/**
 * A collaborative markdown editor for workbench documents (README, notes, cards, reports):
 * CodeMirror 6 bound to the document's Y.Text 'content' through its room (y-websocket), with
 * collaborators' cursors and names. Loaded on first use (a separate bundle chunk).
 */
import { markdown } from '@codemirror/lang-markdown';
import { Compartment, EditorState, Extension } from '@codemirror/state';
import { EditorView, keymap } from '@codemirror/view';
import { URLExt } from '@jupyterlab/coreutils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ServerConnection } from '@jupyterlab/services';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';
import { yCollab, yUndoManagerKeymap } from 'y-codemirror.next';
import { WebsocketProvider, messageAuth } from 'y-websocket';
import * as Y from 'yjs';

import { API_PATH, IDocument, publishDocument } from './api';
import { readAuthMessage, refusedForGood } from './closeCodes';

/** The editor's extensions for a document we may (or may not) edit. */
function access(writable: boolean): Extension {
  return [EditorState.readOnly.of(!writable), EditorView.editable.of(writable)];
}

export interface IUser {
  username?: string;
  name?: string;
  color?: string;
}

/** Editor colours from JupyterLab's CSS variables: light, dark and high-contrast themes. */
const theme = EditorView.theme({
  '&': {
    height: '100%',
    color: 'var(--jp-content-font-color1)',
    backgroundColor: 'var(--jp-layout-color0)',
    fontSize: 'var(--jp-code-font-size)'
  },
  '.cm-content': { fontFamily: 'var(--jp-code-font-family)', caretColor: 'var(--jp-editor-cursor-color)' },
  '.cm-scroller': { overflow: 'auto' },
  '&.cm-focused .cm-cursor': { borderLeftColor: 'var(--jp-editor-cursor-color)' },
  '.cm-ySelectionInfo': { opacity: '1', fontFamily: 'var(--jp-ui-font-family)' }
});

const PREVIEW_DELAY_MS = 250;

export class DocumentEditor extends Widget {
  constructor(
    record: IDocument,
    trans: TranslationBundle,
    me?: IUser,
    rendermime: IRenderMimeRegistry | null = null
  ) {
    super();
    this.record = record;
    this._trans = trans;
    this.id = `workbench-document-${record.id}`;
    this.addClass('jp-WorkbenchDocument');
    this.title.label = record.title || record.kind;
    this.title.caption = trans.__('%1 (%2) in project %3', record.title, record.kind, record.project);
    this.title.closable = true;

    const bar = document.createElement('div');
    bar.className = 'jp-WorkbenchDocument-bar';
    this._status = document.createElement('span');
    this._status.className = 'jp-WorkbenchDocument-status';
    this._status.setAttribute('role', 'status');
    this._people = document.createElement('ul');
    this._people.className = 'jp-WorkbenchDocument-people';
    this._people.setAttribute('aria-label', trans.__('Collaborators'));
    bar.append(this._status, this._people);
    this._rendermime = rendermime;
    this._preview = document.createElement('div');
    this._preview.className = 'jp-WorkbenchDocument-preview jp-RenderedHTMLCommon';
    this._preview.setAttribute('aria-label', trans.__('Preview of %1', record.title || record.kind));
    this._preview.hidden = true;
    if (rendermime) {
      const toggle = document.createElement('button');
      toggle.className = 'jp-mod-styled jp-WorkbenchDocument-previewToggle';
      toggle.textContent = trans.__('Preview');
      toggle.title = trans.__('Show the rendered markdown beside the text');
      toggle.setAttribute('aria-pressed', 'false');
      toggle.addEventListener('click', () => {
        const on = this._preview.hidden;
        this._preview.hidden = !on;
        toggle.setAttribute('aria-pressed', String(on));
        if (on) {
          void this._renderPreview();
        }
      });
      bar.append(toggle);
    }
    if (record.can_write !== false && ['dataset-card', 'model-card'].includes(record.kind)) {
      const publish = document.createElement('button');
      publish.className = 'jp-mod-styled jp-WorkbenchDocument-publish';
      publish.textContent = trans.__('Publish to card');
      publish.title = trans.__('Make this text the %1 of %2', record.kind, record.ref);
      const note = document.createElement('span');
      note.className = 'jp-WorkbenchDocument-note';
      note.setAttribute('role', 'status');
      publish.addEventListener('click', () => {
        publish.disabled = true;
        publishDocument(record.id)
          .then(done => {
            note.textContent =
              done.revision !== undefined
                ? trans.__('Published as card revision %1', done.revision)
                : trans.__('Published');
          })
          .catch((error: Error) => {
            note.textContent = error.message;
          })
          .finally(() => {
            publish.disabled = false;
          });
      });
      bar.append(publish, note);
    }
    this._host = document.createElement('div');
    this._host.className = 'jp-WorkbenchDocument-editor';
    const body = document.createElement('div');
    body.className = 'jp-WorkbenchDocument-body';
    body.append(this._host, this._preview);
    this.node.append(bar, body);

    const settings = ServerConnection.makeSettings();
    const url = URLExt.join(settings.wsUrl, API_PATH, 'rooms');
    const params: Record<string, string> = settings.token ? { token: settings.token } : {};
    this._doc = new Y.Doc();
    this._provider = new WebsocketProvider(url, record.id, this._doc, { params, disableBc: true });
    this._provider.on('status', (event: { status: string }) => this._showStatus(event.status));
    this._provider.on('connection-close', (event: CloseEvent | null) => {
      if (event && refusedForGood(event.code)) {
        // the server refused us (access revoked, document deleted or too large): do not
        // reconnect; after 4408 (too far behind) the provider reconnects and catches up
        this._provider.shouldConnect = false;
        this._showStatus('closed', event.reason);
      }
    });
    // our role changed mid-session (or the server dropped an edit of ours): stop editing and
    // say so, instead of y-websocket's console warning and an editor that looks live; or,
    // promoted, start editing
    this._provider.messageHandlers[messageAuth] = (_encoder, decoder) => {
      const message = readAuthMessage(decoder.arr, decoder.pos);
      if (message?.granted) {
        this._becomeWritable();
      } else if (message) {
        this._becomeReadOnly(message.reason);
      }
    };
    const ytext = this._doc.getText('content');
    ytext.observe(() => this._schedulePreview());
    const undoManager = new Y.UndoManager(ytext);
    const writable = record.can_write !== false;
    this._view = new EditorView({
      parent: this._host,
      state: EditorState.create({
        doc: ytext.toString(),
        extensions: [
          keymap.of(yUndoManagerKeymap),
          markdown(),
          EditorView.lineWrapping,
          theme,
          this._access.of(access(writable)),
          EditorView.contentAttributes.of({
            'aria-label': trans.__('Text of %1', record.title || record.kind)
          }),
          yCollab(ytext, this._provider.awareness, { undoManager })
        ]
      })
    });
    this._writable = writable;
    if (me) {
      // the server writes the real user into everyone's state; this is only for our own list
      this._provider.awareness.setLocalStateField('user', me);
    }
    this._provider.awareness.on('change', () => this._renderPeople());
    this._renderPeople();
  }

  readonly record: IDocument;

  /** The shared text (for tests and commands). */
  get text(): string {
    return this._doc.getText('content').toString();
  }

  focusEditor(): void {
    this._view.focus();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._provider.destroy();
    this._view.destroy();
    this._doc.destroy();
    super.dispose();
  }

  /** Re-render the preview a moment after the text stops changing (only while it is shown). */
  private _schedulePreview(): void {
    if (this._preview.hidden || this._previewTimer !== null) {
      return;
    }
    this._previewTimer = window.setTimeout(() => {
      this._previewTimer = null;
      void this._renderPreview();
    }, PREVIEW_DELAY_MS);
  }

  private async _renderPreview(): Promise<void> {
    if (!this._rendermime || this._preview.hidden || this.isDisposed) {
      return;
    }
    const renderer = this._rendermime.createRenderer('text/markdown');
    const model = this._rendermime.createModel({
      data: { 'text/markdown': this.text },
      trusted: false
    });
    try {
      await renderer.renderModel(model);
      this._preview.replaceChildren(renderer.node);
      this._preview.dataset.rendered = String(++this._previewCount);
    } catch (error) {
      this._preview.textContent = (error as Error).message;
    }
  }

  /** The server refused our edits (our role became viewer, or the project was archived): the
   * editor turns read-only (an edit the server dropped stays only here until a promotion or a
   * reopened document). */
  private _becomeReadOnly(reason: string): void {
    if (!this._writable || this.isDisposed) {
      return;
    }
    this._writable = false;
    this._deniedReason = reason;
    this._view.dispatch({ effects: this._access.reconfigure(access(false)) });
    this._showStatus(this._status.dataset.status ?? 'connected');
  }

  /** Our role became editor mid-session: the editor turns writable (the server also asks for
   * what it lacks of ours, so our copy and the shared text agree again). */
  private _becomeWritable(): void {
    if (this._writable || this.isDisposed) {
      return;
    }
    this._writable = true;
    this._deniedReason = '';
    this._view.dispatch({ effects: this._access.reconfigure(access(true)) });
    this._showStatus(this._status.dataset.status ?? 'connected');
  }

  private _showStatus(status: string, reason = ''): void {
    const trans = this._trans;
    const readOnly = this._deniedReason
      ? trans.__('Live · %1 (a keystroke typed as this arrived may not be saved)', this._deniedReason)
      : trans.__('Live · read-only (viewer)');
    const labels: Record<string, string> = {
      connected: this._writable ? trans.__('Live') : readOnly,
      connecting: trans.__('Connecting…'),
      disconnected: trans.__('Offline: your edits are kept and merge when you reconnect'),
      closed: trans.__('Closed by the server: %1', reason)
    };
    this._status.textContent = labels[status] ?? status;
    this._status.dataset.status = status;
  }

  private _renderPeople(): void {
    const me = this._doc.clientID;
    const people = new Map<string, { user: IUser; self: boolean }>();
    this._provider.awareness.getStates().forEach((state, clientId) => {
      const user = (state as { user?: IUser }).user;
      if (!user) {
        return;
      }
      const key = user.username ?? user.name ?? String(clientId);
      const self = clientId === me || people.get(key)?.self === true;
      people.set(key, { user, self });
    });
    this._people.replaceChildren(
      ...[...people.values()].map(({ user, self }) => {
        const item = document.createElement('li');
        item.className = 'jp-WorkbenchDocument-person';
        item.dataset.username = user.username ?? '';
        const dot = document.createElement('span');
        dot.className = 'jp-WorkbenchDocument-dot';
        dot.style.backgroundColor = user.color ?? 'var(--jp-brand-color1)';
        const name = user.name ?? user.username ?? '';
        item.append(dot, self ? this._trans.__('%1 (you)', name) : name);
        return item;
      })
    );
  }

  private _trans: TranslationBundle;
  private _status: HTMLElement;
  private _people: HTMLElement;
  private _host: HTMLElement;
  private _doc: Y.Doc;
  private _provider: WebsocketProvider;
  private _view: EditorView;
  private _writable: boolean;
  private _access = new Compartment(); // read-only or not: changes when the server refuses us
  private _deniedReason = '';
  private _rendermime: IRenderMimeRegistry | null;
  private _preview: HTMLElement;
  private _previewTimer: number | null = null;
  private _previewCount = 0;
}
