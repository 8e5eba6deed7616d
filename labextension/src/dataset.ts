/**
 * A dataset in the main area: its versions timeline, the files of the chosen version (with
 * downloads), tags, the dataset card and the diff of two versions. Loaded on first use (see
 * index.ts), like the document editor.
 */
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import {
  archiveURL,
  deleteTag,
  diffVersions,
  fileURL,
  getDataset,
  IDataset,
  IDatasetDiff,
  IDatasetFile,
  IDatasetVersion,
  listFiles,
  listVersions,
  messageOf,
  openDocumentRecord,
  setTag
} from './api';
import {
  commitHints,
  defaultDiffPair,
  diffSummary,
  fileChanges,
  formatBytes,
  tableChanges
} from './datasetFormat';
import { listKeyTarget } from './keys';
import { h } from './dom';

function errorBox(): HTMLElement {
  const node = h('div', { class: 'jp-WorkbenchPanel-error', role: 'alert' });
  node.hidden = true;
  return node;
}

function formatTime(iso: string | undefined): string {
  if (!iso) {
    return '';
  }
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

let sections = 0;

export class DatasetView extends Widget {
  constructor(
    readonly project: string,
    readonly datasetName: string,
    trans: TranslationBundle,
    rendermime: IRenderMimeRegistry | null = null,
    openDocument: (id: string) => void = () => undefined
  ) {
    super();
    this._trans = trans;
    this._rendermime = rendermime;
    this._openDocument = openDocument;
    this.addClass('jp-WorkbenchDataset');
    this.title.label = datasetName;
    this.title.caption = trans.__('Dataset %1/%2', project, datasetName);
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('Dataset %1', datasetName));
    this._build();
  }

  /** Reload the dataset, its versions, the chosen version's files. */
  async refresh(): Promise<void> {
    this._error.hidden = true;
    this.node.setAttribute('aria-busy', 'true');
    try {
      const [dataset, versions] = await Promise.all([
        getDataset(this.project, this.datasetName),
        listVersions(this.project, this.datasetName)
      ]);
      this._data = dataset;
      this._versions = versions.items;
      const numbers = this._versions.map(v => v.version);
      if (this._selected === null || !numbers.includes(this._selected)) {
        this._selected = numbers.length ? Math.max(...numbers) : null;
      }
      this._renderHeader();
      this._renderVersions();
      this._renderCompareChoices();
      await Promise.all([this._renderCard(), this._loadFiles()]);
    } catch (error) {
      this._show(this._error, messageOf(error));
    } finally {
      this.node.setAttribute('aria-busy', 'false');
      this.node.dataset.loaded = 'true';
    }
  }

  protected onAfterAttach(): void {
    if (this.node.dataset.loaded !== 'true') {
      void this.refresh();
    }
  }

  private _section(title: string, ...children: HTMLElement[]): HTMLElement {
    const id = `jp-WorkbenchDataset-section-${++sections}`;
    return h(
      'section',
      { class: 'jp-WorkbenchDataset-section', 'aria-labelledby': id },
      h('h3', { id }, title),
      ...children
    );
  }

  private _build(): void {
    const trans = this._trans;
    const refresh = h(
      'button',
      {
        class: 'jp-WorkbenchPanel-refresh jp-mod-styled',
        type: 'button',
        title: trans.__('Reload the dataset'),
        'aria-label': trans.__('Reload the dataset')
      },
      '⟳'
    );
    refresh.addEventListener('click', () => void this.refresh());
    this._heading = h('h2', {}, `${this.project}/${this.datasetName}`);
    this._description = h('p', { class: 'jp-WorkbenchDataset-description' });
    this._tags = h('ul', {
      class: 'jp-WorkbenchDataset-tags',
      'aria-label': trans.__('Tags')
    });
    this._error = errorBox();
    this._error.setAttribute('aria-live', 'assertive');
    const header = h(
      'header',
      { class: 'jp-WorkbenchDataset-header' },
      h('div', { class: 'jp-WorkbenchPanel-header' }, this._heading, refresh),
      this._description,
      this._tags,
      this._error
    );

    this._noVersions = h('p', { class: 'jp-WorkbenchPanel-empty jp-WorkbenchDataset-noVersions' });
    this._noVersions.hidden = true;
    this._timeline = h('ol', {
      class: 'jp-WorkbenchDataset-versions',
      role: 'listbox',
      'aria-label': trans.__('Versions, newest first')
    });
    this._timeline.addEventListener('keydown', event => this._onTimelineKey(event));
    this._tagLabel = h('span', {});
    this._tagInput = h('input', {
      class: 'jp-mod-styled',
      name: 'tag',
      type: 'text',
      placeholder: trans.__('e.g. production'),
      'aria-label': trans.__('Tag name')
    }) as HTMLInputElement;
    this._tagError = errorBox();
    this._tagForm = h(
      'form',
      { class: 'jp-WorkbenchDataset-tagForm', 'aria-label': trans.__('Tag the selected version') },
      h('label', {}, this._tagLabel, this._tagInput),
      h('button', { class: 'jp-mod-styled', type: 'submit' }, trans.__('Tag')),
      this._tagError
    ) as HTMLFormElement;
    this._tagForm.hidden = true;
    this._tagForm.addEventListener('submit', event => {
      event.preventDefault();
      void this._tag();
    });

    this._filesTitle = h('span', {}, trans.__('Files'));
    this._filesError = errorBox();
    this._archive = h('a', { class: 'jp-WorkbenchDataset-archive', download: '' });
    this._archive.hidden = true;
    this._fileRows = h('tbody');
    this._files = h(
      'table',
      { class: 'jp-WorkbenchDataset-files', 'aria-label': trans.__('Files of the version') },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, trans.__('Path')),
          h('th', { scope: 'col', class: 'jp-WorkbenchDataset-size' }, trans.__('Size')),
          h(
            'th',
            { scope: 'col' },
            h('span', { class: 'jp-WorkbenchDataset-sr' }, trans.__('Download'))
          )
        )
      ),
      this._fileRows
    );
    this._files.hidden = true;
    this._moreFiles = h(
      'button',
      { class: 'jp-mod-styled', type: 'button' },
      trans.__('Show more files')
    );
    this._moreFiles.hidden = true;
    this._moreFiles.addEventListener('click', () => void this._loadFiles(true));

    this._from = h('select', {
      class: 'jp-mod-styled',
      name: 'from',
      'aria-label': trans.__('Older version')
    }) as HTMLSelectElement;
    this._to = h('select', {
      class: 'jp-mod-styled',
      name: 'to',
      'aria-label': trans.__('Newer version')
    }) as HTMLSelectElement;
    const compare = h(
      'button',
      { class: 'jp-mod-styled jp-mod-accept', type: 'submit' },
      trans.__('Compare')
    );
    this._compareForm = h(
      'form',
      { class: 'jp-WorkbenchDataset-compare', 'aria-label': trans.__('Compare two versions') },
      h('label', {}, trans.__('From'), this._from),
      h('label', {}, trans.__('to'), this._to),
      compare
    ) as HTMLFormElement;
    this._compareForm.addEventListener('submit', event => {
      event.preventDefault();
      void this._compare();
    });
    this._compareEmpty = h('p', { class: 'jp-WorkbenchPanel-empty' });
    this._compareEmpty.hidden = true;
    this._diffError = errorBox();
    this._diff = h('div', { class: 'jp-WorkbenchDataset-diff', 'aria-live': 'polite' });

    this._card = h('div', { class: 'jp-WorkbenchDataset-card' });
    this._cardError = errorBox();
    this._editCard = h(
      'button',
      {
        class: 'jp-mod-styled jp-WorkbenchDataset-editCard',
        type: 'button',
        title: trans.__('Write the card together; "Publish to card" makes it this card')
      },
      trans.__('Edit card')
    ) as HTMLButtonElement;
    this._editCard.hidden = true;
    this._editCard.addEventListener('click', () => void this._openCard());

    const left = h(
      'div',
      { class: 'jp-WorkbenchDataset-column' },
      this._section(trans.__('Versions'), this._noVersions, this._timeline, this._tagForm)
    );
    const filesSection = h(
      'section',
      { class: 'jp-WorkbenchDataset-section', 'aria-label': trans.__('Files') },
      h('h3', {}, this._filesTitle, ' ', this._archive),
      this._filesError,
      this._files,
      this._moreFiles
    );
    const right = h(
      'div',
      { class: 'jp-WorkbenchDataset-column jp-WorkbenchDataset-main' },
      filesSection,
      this._section(
        trans.__('Compare versions'),
        this._compareEmpty,
        this._compareForm,
        this._diffError,
        this._diff
      ),
      this._section(trans.__('Dataset card'), this._editCard, this._cardError, this._card)
    );
    this.node.append(header, h('div', { class: 'jp-WorkbenchDataset-body' }, left, right));
  }

  private _renderHeader(): void {
    const trans = this._trans;
    const data = this._data;
    this._description.textContent = data?.description ?? '';
    this._description.hidden = !data?.description;
    const tags = Object.entries(data?.tags ?? {}).sort(([a], [b]) => a.localeCompare(b));
    const writable = data?.can_write !== false;
    this._tags.replaceChildren(
      ...tags.map(([tag, version]) => {
        const item = h(
          'li',
          { class: 'jp-WorkbenchDataset-tag', 'data-tag': tag },
          `${tag} → ${version}`
        );
        // 'latest' moves by itself: it has no remove button
        if (writable && tag !== 'latest') {
          const remove = h(
            'button',
            {
              class: 'jp-WorkbenchDataset-untag',
              type: 'button',
              'aria-label': trans.__('Remove tag %1', tag),
              title: trans.__('Remove tag %1', tag)
            },
            '×'
          );
          remove.addEventListener('click', () => void this._untag(tag));
          item.append(remove);
        }
        return item;
      })
    );
    this._tagForm.hidden = !writable || this._versions.length === 0;
    this._tags.hidden = tags.length === 0;
    const hints = commitHints(this.project, this.datasetName);
    this._noVersions.textContent = trans.__(
      'No version yet. Commit a folder to create the first one, in a notebook: %1 or from a terminal: %2',
      hints.python,
      hints.shell
    );
    this._noVersions.hidden = this._versions.length > 0;
  }

  private _renderVersions(): void {
    const trans = this._trans;
    this._tagLabel.textContent = trans.__('Tag v%1 as', this._selected ?? '');
    this._timeline.replaceChildren(
      ...this._versions.map(v => {
        const selected = v.version === this._selected;
        const meta = [v.author ?? '', formatTime(v.created_at)].filter(Boolean).join(' · ');
        const item = h(
          'li',
          {
            class: 'jp-WorkbenchDataset-version' + (selected ? ' jp-mod-selected' : ''),
            role: 'option',
            tabindex: selected ? '0' : '-1',
            'aria-selected': String(selected),
            'data-version': String(v.version)
          },
          h(
            'div',
            { class: 'jp-WorkbenchDataset-versionHead' },
            h('strong', {}, `v${v.version}`),
            ...v.tags.map(t => h('span', { class: 'jp-WorkbenchDataset-tag' }, t)),
            h(
              'span',
              { class: 'jp-WorkbenchPanel-role' },
              trans.__('%1 files · %2', v.file_count, formatBytes(v.total_bytes))
            )
          ),
          h('div', { class: 'jp-WorkbenchDataset-message' }, v.message || trans.__('(no message)')),
          h('div', { class: 'jp-WorkbenchPanel-role' }, meta)
        );
        item.addEventListener('click', () => void this._select(v.version));
        return item;
      })
    );
  }

  private _onTimelineKey(event: KeyboardEvent): void {
    const index = this._versions.findIndex(v => v.version === this._selected);
    const next = listKeyTarget(event.key, index, this._versions.length);
    if (next === null) {
      return;
    }
    event.preventDefault();
    if (next !== index) {
      void this._select(this._versions[next].version);
      (this._timeline.querySelector('[aria-selected="true"]') as HTMLElement | null)?.focus();
    }
  }

  /** Point the typed tag at the selected version. */
  private async _tag(): Promise<void> {
    const tag = this._tagInput.value.trim();
    if (this._selected === null || !tag) {
      this._tagInput.focus();
      return;
    }
    this._tagError.hidden = true;
    try {
      await setTag(this.project, this.datasetName, tag, `v${this._selected}`);
      this._tagInput.value = '';
      await this.refresh();
    } catch (error) {
      this._show(this._tagError, messageOf(error));
      this._tagInput.focus();
    }
  }

  private async _untag(tag: string): Promise<void> {
    this._error.hidden = true;
    try {
      await deleteTag(this.project, this.datasetName, tag);
      await this.refresh();
    } catch (error) {
      this._show(this._error, messageOf(error));
    }
  }

  private async _select(version: number): Promise<void> {
    this._selected = version;
    this._renderVersions();
    await this._loadFiles();
  }

  private async _loadFiles(more = false): Promise<void> {
    const trans = this._trans;
    const version = this._selected;
    this._filesError.hidden = true;
    if (version === null) {
      this._filesTitle.textContent = trans.__('Files');
      this._files.hidden = true;
      this._archive.hidden = true;
      this._moreFiles.hidden = true;
      return;
    }
    const ref = `v${version}`;
    this._filesTitle.textContent = trans.__('Files of %1', ref);
    this._archive.textContent = trans.__('download %1 as .tar', ref);
    this._archive.setAttribute('href', archiveURL(this.project, this.datasetName, ref));
    this._archive.setAttribute(
      'aria-label',
      trans.__('Download all files of %1 as a tar archive', ref)
    );
    this._archive.hidden = false;
    try {
      const page = await listFiles(this.project, this.datasetName, ref, more ? this._cursor : null);
      if (version !== this._selected) {
        return;
      }
      this._cursor = page.next_cursor;
      const rows = page.items.map(f => this._fileRow(ref, f));
      if (more) {
        this._fileRows.append(...rows);
      } else {
        this._fileRows.replaceChildren(...rows);
      }
      this._files.hidden = false;
      this._moreFiles.hidden = page.next_cursor === null;
    } catch (error) {
      this._show(this._filesError, messageOf(error));
    }
  }

  private _fileRow(ref: string, file: IDatasetFile): HTMLElement {
    const trans = this._trans;
    const link = h(
      'a',
      {
        href: fileURL(this.project, this.datasetName, ref, file.path),
        download: file.path.split('/').pop() ?? file.path,
        'aria-label': trans.__('Download %1', file.path)
      },
      trans.__('download')
    );
    return h(
      'tr',
      { 'data-path': file.path, title: file.media_type },
      h('td', { class: 'jp-WorkbenchDataset-path' }, file.path),
      h('td', { class: 'jp-WorkbenchDataset-size' }, formatBytes(file.size)),
      h('td', {}, link)
    );
  }

  private _renderCompareChoices(): void {
    const pair = defaultDiffPair(this._versions);
    this._compareForm.hidden = pair === null;
    this._compareEmpty.hidden = pair !== null;
    this._compareEmpty.textContent = this._trans.__(
      'Commit a second version to compare it with the first: the diff shows the files added, removed and changed, and the schema and row changes of CSV and Parquet files.'
    );
    if (pair === null) {
      this._diff.replaceChildren();
      return;
    }
    const keep = [this._from.value, this._to.value];
    for (const select of [this._from, this._to]) {
      select.replaceChildren(
        ...this._versions.map(v => h('option', { value: `v${v.version}` }, `v${v.version}`))
      );
    }
    const refs = this._versions.map(v => `v${v.version}`);
    this._from.value = refs.includes(keep[0]) ? keep[0] : pair[0];
    this._to.value = refs.includes(keep[1]) ? keep[1] : pair[1];
  }

  private async _compare(): Promise<void> {
    const [from, to] = [this._from.value, this._to.value];
    const button = this._compareForm.querySelector('button[type=submit]') as HTMLButtonElement;
    this._diffError.hidden = true;
    // reading big tables takes a while: say so, and take no second click meanwhile
    button.disabled = true;
    this._diff.replaceChildren(
      h(
        'p',
        { class: 'jp-WorkbenchDataset-comparing' },
        this._trans.__('Comparing %1 and %2…', from, to)
      )
    );
    this._diff.setAttribute('aria-busy', 'true');
    try {
      const diff = await diffVersions(this.project, this.datasetName, from, to);
      this._renderDiff(diff);
    } catch (error) {
      this._diff.replaceChildren();
      this._show(this._diffError, messageOf(error));
    } finally {
      button.disabled = false;
      this._diff.setAttribute('aria-busy', 'false');
    }
  }

  private _renderDiff(diff: IDatasetDiff): void {
    const trans = this._trans;
    const marks = { added: '+', removed: '−', modified: '~' };
    const labels = {
      added: trans.__('added'),
      removed: trans.__('removed'),
      modified: trans.__('modified')
    };
    const files = h(
      'ul',
      { class: 'jp-WorkbenchDataset-changes', 'aria-label': trans.__('Changed files') },
      ...fileChanges(diff).map(c =>
        h(
          'li',
          { class: `jp-WorkbenchDataset-change jp-mod-${c.change}`, 'data-path': c.path },
          h(
            'span',
            { class: 'jp-WorkbenchDataset-mark', 'aria-label': labels[c.change] },
            marks[c.change]
          ),
          h('span', { class: 'jp-WorkbenchDataset-path' }, c.path),
          h('span', { class: 'jp-WorkbenchPanel-role' }, c.detail)
        )
      )
    );
    const tables = diff.tables.map(t =>
      h(
        'div',
        { class: 'jp-WorkbenchDataset-table', 'data-path': t.path },
        h('h4', {}, trans.__('%1 (%2)', t.path, t.format)),
        h('ul', {}, ...tableChanges(t, trans).map(line => h('li', {}, line)))
      )
    );
    this._diff.replaceChildren(
      h('p', { class: 'jp-WorkbenchDataset-summary' }, diffSummary(diff, trans)),
      files,
      ...tables
    );
  }

  /** Open the dataset's collaborative card document (it starts with the card's text). */
  private async _openCard(): Promise<void> {
    this._cardError.hidden = true;
    this._editCard.disabled = true;
    try {
      const doc = await openDocumentRecord(this.project, 'dataset-card', this.datasetName);
      this._openDocument(doc.id);
    } catch (error) {
      this._show(this._cardError, messageOf(error));
    } finally {
      this._editCard.disabled = false;
    }
  }

  private async _renderCard(): Promise<void> {
    this._editCard.hidden = this._data?.can_write === false;
    const card = this._data?.card ?? '';
    if (!card.trim()) {
      this._card.replaceChildren(
        h(
          'p',
          { class: 'jp-WorkbenchPanel-empty' },
          this._editCard.hidden
            ? this._trans.__('No card yet.')
            : this._trans.__(
                'No card yet. "Edit card" opens it in a shared markdown editor: describe the data, where it comes from and its license, then "Publish to card".'
              )
        )
      );
      return;
    }
    if (!this._rendermime) {
      this._card.replaceChildren(h('pre', { class: 'jp-WorkbenchDataset-cardText' }, card));
      return;
    }
    const renderer = this._rendermime.createRenderer('text/markdown');
    const model = this._rendermime.createModel({ data: { 'text/markdown': card }, trusted: false });
    await renderer.renderModel(model);
    this._card.replaceChildren(renderer.node);
  }

  private _show(node: HTMLElement, message: string): void {
    node.textContent = message;
    node.hidden = false;
  }

  private _trans: TranslationBundle;
  private _rendermime: IRenderMimeRegistry | null;
  private _data: IDataset | null = null;
  private _versions: IDatasetVersion[] = [];
  private _selected: number | null = null;
  private _cursor: string | null = null;
  private _heading!: HTMLElement;
  private _description!: HTMLElement;
  private _tags!: HTMLElement;
  private _error!: HTMLElement;
  private _noVersions!: HTMLElement;
  private _timeline!: HTMLElement;
  private _filesTitle!: HTMLElement;
  private _filesError!: HTMLElement;
  private _archive!: HTMLElement;
  private _files!: HTMLElement;
  private _fileRows!: HTMLElement;
  private _moreFiles!: HTMLElement;
  private _compareForm!: HTMLFormElement;
  private _compareEmpty!: HTMLElement;
  private _from!: HTMLSelectElement;
  private _to!: HTMLSelectElement;
  private _diffError!: HTMLElement;
  private _diff!: HTMLElement;
  private _card!: HTMLElement;
  private _tagForm!: HTMLFormElement;
  private _tagLabel!: HTMLElement;
  private _tagInput!: HTMLInputElement;
  private _tagError!: HTMLElement;
  private _cardError!: HTMLElement;
  private _editCard!: HTMLButtonElement;
  private _openDocument: (id: string) => void;
}
