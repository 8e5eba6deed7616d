/**
 * A registered model in the main area: its versions with lineage (run, training datasets) and
 * aliases, promotion requests (editors ask, admins decide), and the model card (fields and
 * markdown, previewed with JupyterLab's markdown renderer, saved with If-Match). Loaded on first
 * use (see index.ts).
 */
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IProject, messageOf, openDocumentRecord, requestAPI, WorkbenchAPIError } from './api';
import {
  decidePromotion,
  getModel,
  IModel,
  IModelCard,
  IModelVersion,
  IPromotion,
  registerVersion,
  requestPromotion,
  saveCard
} from './registryApi';
import {
  aliasesByVersion,
  canDecide,
  canRequest,
  CARD_FIELDS,
  cardFields,
  EventLink,
  fieldLabel,
  fieldText,
  lineageLabel,
  newestFirst,
  PROTECTED_ALIASES,
  saveErrorMessage,
  toDate
} from './registryFormat';
import { h } from './dom';

function errorBox(): HTMLElement {
  const node = h('div', { class: 'jp-WorkbenchPanel-error', role: 'alert' });
  node.hidden = true;
  return node;
}

let sections = 0;

export class ModelView extends Widget {
  constructor(
    readonly project: string,
    readonly modelName: string,
    trans: TranslationBundle,
    rendermime: IRenderMimeRegistry | null = null,
    open: (link: EventLink) => void = () => undefined
  ) {
    super();
    this._trans = trans;
    this._rendermime = rendermime;
    this._open = open;
    this.addClass('jp-WorkbenchModel');
    this.title.label = modelName;
    this.title.caption = trans.__('Model %1/%2', project, modelName);
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('Model %1', modelName));
    this._build();
  }

  /** Reload the model: versions, aliases, requests, card (an unsaved card edit is kept). */
  async refresh(): Promise<void> {
    this._error.hidden = true;
    this.node.setAttribute('aria-busy', 'true');
    try {
      const [model, project] = await Promise.all([
        getModel(this.project, this.modelName),
        requestAPI<IProject>(`projects/${encodeURIComponent(this.project)}`).catch(() => null)
      ]);
      this._model = model;
      this._role = project?.my_role ?? 'viewer';
      this._renderHeader();
      this._renderVersions();
      this._renderPromotions();
      if (!this._cardDirty) {
        this._fillCard(model.card);
      }
      this._cardForm.hidden = false;
      this._setCardWritable(canRequest(this._role));
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
    const id = `jp-WorkbenchModel-section-${++sections}`;
    return h(
      'section',
      { class: 'jp-WorkbenchModel-section', 'aria-labelledby': id },
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
        title: trans.__('Reload the model'),
        'aria-label': trans.__('Reload the model')
      },
      '⟳'
    );
    refresh.addEventListener('click', () => void this.refresh());
    this._description = h('p', { class: 'jp-WorkbenchModel-description' });
    this._aliases = h('ul', { class: 'jp-WorkbenchModel-aliases', 'aria-label': trans.__('Aliases') });
    this._error = errorBox();
    this._error.setAttribute('aria-live', 'assertive');
    const header = h(
      'header',
      { class: 'jp-WorkbenchModel-header' },
      h(
        'div',
        { class: 'jp-WorkbenchPanel-header' },
        h('h2', {}, `${this.project}/${this.modelName}`),
        refresh
      ),
      this._description,
      this._aliases,
      this._error
    );

    // versions with lineage
    this._noVersions = h('p', { class: 'jp-WorkbenchPanel-empty' });
    this._noVersions.hidden = true;
    this._versionRows = h('tbody');
    this._versions = h(
      'table',
      { class: 'jp-WorkbenchModel-versions', 'aria-label': trans.__('Versions, newest first') },
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ...[
            trans.__('Version'),
            trans.__('Aliases'),
            trans.__('Run'),
            trans.__('Training datasets'),
            trans.__('Registered')
          ].map(label => h('th', { scope: 'col' }, label))
        )
      ),
      this._versionRows
    );
    this._runInput = h('input', {
      class: 'jp-mod-styled',
      name: 'run_id',
      placeholder: trans.__('run id (32 hex digits)'),
      'aria-label': trans.__('Run id to register as a new version')
    }) as HTMLInputElement;
    this._registerError = errorBox();
    this._registerForm = h(
      'form',
      { class: 'jp-WorkbenchModel-form', 'aria-label': trans.__('Register a new version') },
      this._runInput,
      h('button', { class: 'jp-mod-styled', type: 'submit' }, trans.__('Register version')),
      this._registerError
    ) as HTMLFormElement;
    this._registerForm.hidden = true;
    this._registerForm.addEventListener('submit', event => {
      event.preventDefault();
      void this._register();
    });

    // promotions: the request form (editors), the pending requests (admins decide)
    this._versionSelect = h('select', {
      class: 'jp-mod-styled',
      name: 'version',
      'aria-label': trans.__('Version to promote')
    }) as HTMLSelectElement;
    this._aliasSelect = h(
      'select',
      { class: 'jp-mod-styled', name: 'alias', 'aria-label': trans.__('Alias') },
      ...PROTECTED_ALIASES.map(a => h('option', { value: a }, a))
    ) as HTMLSelectElement;
    this._noteInput = h('input', {
      class: 'jp-mod-styled',
      name: 'note',
      placeholder: trans.__('why (optional)'),
      'aria-label': trans.__('Note for the approver')
    }) as HTMLInputElement;
    this._requestError = errorBox();
    this._requestForm = h(
      'form',
      { class: 'jp-WorkbenchModel-form jp-WorkbenchModel-request', 'aria-label': trans.__('Request promotion') },
      h('label', {}, trans.__('Version'), this._versionSelect),
      h('label', {}, trans.__('to'), this._aliasSelect),
      this._noteInput,
      h('button', { class: 'jp-mod-styled jp-mod-accept', type: 'submit' }, trans.__('Request promotion')),
      this._requestError
    ) as HTMLFormElement;
    this._requestForm.hidden = true;
    this._requestForm.addEventListener('submit', event => {
      event.preventDefault();
      void this._request();
    });
    this._promotionsEmpty = h('p', { class: 'jp-WorkbenchPanel-empty' });
    this._promotionsError = errorBox();
    this._promotionsError.setAttribute('aria-live', 'assertive');
    this._promotions = h('ul', {
      class: 'jp-WorkbenchModel-promotions',
      'aria-label': trans.__('Pending promotion requests')
    });

    // the card
    this._fieldInputs = new Map();
    const fields = h('div', { class: 'jp-WorkbenchModel-fields' });
    for (const key of CARD_FIELDS) {
      const input = h('textarea', {
        class: 'jp-mod-styled',
        name: key,
        rows: '2'
      }) as HTMLTextAreaElement;
      input.addEventListener('input', () => this._markDirty());
      this._fieldInputs.set(key, input);
      fields.append(h('label', { class: 'jp-WorkbenchModel-field' }, fieldLabel(key), input));
    }
    this._markdown = h('textarea', {
      class: 'jp-mod-styled jp-WorkbenchModel-markdown',
      name: 'markdown',
      rows: '14',
      'aria-label': trans.__('Card (markdown)'),
      placeholder: trans.__('# What this model does\n\nTraining data, evaluation, how to use it.')
    }) as HTMLTextAreaElement;
    this._markdown.addEventListener('input', () => {
      this._markDirty();
      window.clearTimeout(this._previewTimer);
      this._previewTimer = window.setTimeout(() => void this._renderPreview(), 200);
    });
    this._preview = h('div', {
      class: 'jp-WorkbenchModel-preview',
      'aria-label': trans.__('Card preview'),
      'aria-live': 'polite'
    });
    this._cardMeta = h('p', { class: 'jp-WorkbenchPanel-role jp-WorkbenchModel-cardMeta' });
    this._cardError = errorBox();
    this._cardError.setAttribute('aria-live', 'assertive');
    this._cardNote = h('p', { class: 'jp-WorkbenchModel-cardNote', role: 'status' });
    this._saveButton = h(
      'button',
      { class: 'jp-mod-styled jp-mod-accept', type: 'submit' },
      trans.__('Save card')
    ) as HTMLButtonElement;
    const reload = h('button', { class: 'jp-mod-styled', type: 'button' }, trans.__('Reload'));
    reload.addEventListener('click', () => {
      this._cardDirty = false;
      void this.refresh();
    });
    this._together = h(
      'button',
      {
        class: 'jp-mod-styled',
        type: 'button',
        title: trans.__('Write the card with others in a shared editor; "Publish to card" saves it here')
      },
      trans.__('Edit together')
    ) as HTMLButtonElement;
    this._together.addEventListener('click', () => void this._openTogether());
    this._cardForm = h(
      'form',
      { class: 'jp-WorkbenchModel-card', 'aria-label': trans.__('Model card') },
      this._cardMeta,
      fields,
      h(
        'div',
        { class: 'jp-WorkbenchModel-editor' },
        this._markdown,
        this._preview
      ),
      h('div', { class: 'jp-WorkbenchModel-actions' }, this._saveButton, reload, this._together),
      this._cardError,
      this._cardNote
    ) as HTMLFormElement;
    this._cardForm.hidden = true;
    this._cardForm.addEventListener('submit', event => {
      event.preventDefault();
      void this._saveCard();
    });

    this.node.append(
      header,
      this._section(trans.__('Versions'), this._noVersions, this._versions, this._registerForm),
      this._section(
        trans.__('Promotions'),
        this._requestForm,
        this._promotionsError,
        this._promotionsEmpty,
        this._promotions
      ),
      this._section(trans.__('Model card'), this._cardForm)
    );
  }

  private _renderHeader(): void {
    const model = this._model!;
    this._description.textContent = model.description ?? '';
    this._description.hidden = !model.description;
    const aliases = Object.entries(model.aliases).sort(([a], [b]) => a.localeCompare(b));
    this._aliases.replaceChildren(
      ...aliases.map(([alias, version]) =>
        h('li', { class: 'jp-WorkbenchModel-alias', 'data-alias': alias }, `${alias} → v${version}`)
      )
    );
    this._aliases.hidden = aliases.length === 0;
  }

  /** A run's id; a link to it in its experiment's view where that is known. */
  private _runLink(runId: string, experiment: IModelVersion['experiment']): HTMLElement {
    const id = h('code', {}, runId.slice(0, 8));
    if (!experiment) {
      id.title = runId;
      return id;
    }
    const link = h(
      'button',
      {
        class: 'jp-WorkbenchModel-link',
        type: 'button',
        'data-run': runId,
        title: this._trans.__('Open run %1 in experiment %2/%3', runId, experiment.project, experiment.name)
      },
      id
    );
    link.addEventListener('click', () =>
      this._open({
        kind: 'run',
        project: experiment.project,
        experiment: experiment.name,
        experimentId: experiment.mlflow_experiment_id,
        runId
      })
    );
    return link;
  }

  private _renderVersions(): void {
    const trans = this._trans;
    const model = this._model!;
    const versions = newestFirst(model.versions);
    const byVersion = aliasesByVersion(model.aliases);
    this._noVersions.textContent = trans.__(
      'No version yet. Register a run\'s model, in a notebook: wb.models.register(run, %1), or with its run id below.',
      JSON.stringify(this.modelName)
    );
    this._noVersions.hidden = versions.length > 0;
    this._versions.hidden = versions.length === 0;
    this._versionRows.replaceChildren(
      ...versions.map(v => {
        const run = v.run_id
          ? this._runLink(v.run_id, v.experiment ?? null)
          : h('span', { class: 'jp-WorkbenchPanel-role' }, trans.__('none'));
        const datasets = h('ul', { class: 'jp-WorkbenchModel-lineage' });
        for (const d of v.datasets) {
          const project = d.project ?? this.project;
          const link = h(
            'button',
            {
              class: 'jp-WorkbenchModel-link',
              type: 'button',
              'data-dataset': d.dataset,
              title: trans.__('Open dataset %1/%2', project, d.dataset)
            },
            lineageLabel(d)
          );
          link.addEventListener('click', () =>
            this._open({ kind: 'dataset', project, name: d.dataset })
          );
          datasets.append(h('li', {}, link));
        }
        if (!v.datasets.length) {
          datasets.append(h('li', { class: 'jp-WorkbenchPanel-role' }, trans.__('none recorded')));
        }
        const created = toDate(v.created);
        return h(
          'tr',
          { 'data-version': v.version },
          h('td', {}, h('strong', {}, `v${v.version}`)),
          h(
            'td',
            { class: 'jp-WorkbenchModel-versionAliases' },
            ...(byVersion.get(v.version) ?? []).map(a =>
              h('span', { class: 'jp-WorkbenchModel-alias' }, a)
            )
          ),
          h('td', {}, run),
          h('td', {}, datasets),
          h('td', {}, created ? created.toLocaleString() : '')
        );
      })
    );
    const writable = canRequest(this._role);
    this._registerForm.hidden = !writable;
    // the version choice of the request form, newest first
    const keep = this._versionSelect.value;
    this._versionSelect.replaceChildren(
      ...versions.map(v => h('option', { value: v.version }, `v${v.version}`))
    );
    if (versions.some(v => v.version === keep)) {
      this._versionSelect.value = keep;
    }
    this._requestForm.hidden = !writable || versions.length === 0;
  }

  private _renderPromotions(): void {
    const trans = this._trans;
    const pending = this._model!.pending_promotions;
    const decider = canDecide(this._role);
    this._promotionsEmpty.hidden = pending.length > 0;
    this._promotionsEmpty.textContent = canRequest(this._role)
      ? trans.__(
          'No pending request. Ask for a version to become "production" above; an admin of the project approves it.'
        )
      : trans.__('No pending request.');
    this._promotions.replaceChildren(
      ...pending.map(p => {
        const item = h(
          'li',
          { class: 'jp-WorkbenchModel-promotion', 'data-request': String(p.id) },
          h(
            'span',
            {},
            trans.__('v%1 → %2, asked by %3', p.version, p.alias, p.requested_by ?? '?')
          )
        );
        if (p.note) {
          item.append(h('span', { class: 'jp-WorkbenchPanel-role' }, p.note));
        }
        if (decider) {
          for (const approve of [true, false]) {
            const label = approve ? trans.__('Approve') : trans.__('Reject');
            const button = h(
              'button',
              {
                class: 'jp-mod-styled' + (approve ? ' jp-mod-accept' : ' jp-mod-warn'),
                type: 'button',
                'aria-label': trans.__('%1 v%2 as %3', label, p.version, p.alias)
              },
              label
            ) as HTMLButtonElement;
            button.addEventListener('click', () => void this._decide(p, approve, button));
            item.append(button);
          }
        }
        return item;
      })
    );
  }

  private async _register(): Promise<void> {
    const runId = this._runInput.value.trim();
    this._registerError.hidden = true;
    try {
      await registerVersion(this.project, this.modelName, runId);
      this._runInput.value = '';
      await this.refresh();
    } catch (error) {
      this._show(this._registerError, messageOf(error));
      this._runInput.focus();
    }
  }

  private async _request(): Promise<void> {
    this._requestError.hidden = true;
    const button = this._requestForm.querySelector('button[type=submit]') as HTMLButtonElement;
    button.disabled = true;
    try {
      await requestPromotion(
        this.project,
        this.modelName,
        this._versionSelect.value,
        this._aliasSelect.value,
        this._noteInput.value.trim()
      );
      this._noteInput.value = '';
      await this.refresh();
    } catch (error) {
      this._show(this._requestError, messageOf(error));
    } finally {
      button.disabled = false;
    }
  }

  private async _decide(p: IPromotion, approve: boolean, button: HTMLButtonElement): Promise<void> {
    this._promotionsError.hidden = true;
    button.disabled = true;
    try {
      await decidePromotion(this.project, this.modelName, p.id, approve);
      await this.refresh();
    } catch (error) {
      // e.g. "you asked for this promotion; another admin must decide it"
      this._show(this._promotionsError, messageOf(error));
      button.disabled = false;
    }
  }

  private _fillCard(card: IModelCard): void {
    const trans = this._trans;
    this._card = card;
    this._markdown.value = card.markdown ?? '';
    for (const [key, input] of this._fieldInputs) {
      input.value = fieldText(card.fields?.[key]);
    }
    this._cardMeta.textContent = card.revision
      ? trans.__(
          'Revision %1 by %2, %3',
          card.revision,
          card.author ?? '?',
          toDate(card.updated_at)?.toLocaleString() ?? ''
        )
      : trans.__('No card yet: describe what the model is for, its limits and its training data.');
    void this._renderPreview();
  }

  private _setCardWritable(writable: boolean): void {
    this._markdown.readOnly = !writable;
    for (const input of this._fieldInputs.values()) {
      input.readOnly = !writable;
    }
    this._saveButton.hidden = !writable;
    this._together.hidden = !writable;
  }

  /** The card's collaborative document (it starts with the card's text). */
  private async _openTogether(): Promise<void> {
    this._cardError.hidden = true;
    this._together.disabled = true;
    try {
      const doc = await openDocumentRecord(this.project, 'model-card', this.modelName);
      this._open({ kind: 'document', id: doc.id });
    } catch (error) {
      this._show(this._cardError, messageOf(error));
    } finally {
      this._together.disabled = false;
    }
  }

  private _markDirty(): void {
    this._cardDirty = true;
    this._cardNote.textContent = '';
  }

  private async _renderPreview(): Promise<void> {
    const text = this._markdown.value;
    if (!text.trim()) {
      this._preview.replaceChildren(
        h('p', { class: 'jp-WorkbenchPanel-empty' }, this._trans.__('The preview shows here.'))
      );
      return;
    }
    if (!this._rendermime) {
      this._preview.replaceChildren(h('pre', {}, text));
      return;
    }
    const renderer = this._rendermime.createRenderer('text/markdown');
    const model = this._rendermime.createModel({ data: { 'text/markdown': text }, trusted: false });
    await renderer.renderModel(model);
    if (text === this._markdown.value) {
      this._preview.replaceChildren(renderer.node);
    }
  }

  private async _saveCard(): Promise<void> {
    const trans = this._trans;
    this._cardError.hidden = true;
    this._cardNote.textContent = '';
    this._saveButton.disabled = true;
    const texts: Record<string, string> = {};
    for (const [key, input] of this._fieldInputs) {
      texts[key] = input.value;
    }
    try {
      const saved = await saveCard(
        this.project,
        this.modelName,
        this._markdown.value,
        cardFields(this._card?.fields ?? {}, texts),
        this._card?.etag
      );
      this._cardDirty = false;
      this._fillCard(saved);
      this._cardNote.textContent = trans.__('Saved as revision %1.', saved.revision);
    } catch (error) {
      const status = error instanceof WorkbenchAPIError ? error.status : 0;
      this._show(this._cardError, saveErrorMessage(status, messageOf(error), trans));
    } finally {
      this._saveButton.disabled = false;
    }
  }

  private _show(node: HTMLElement, message: string): void {
    node.textContent = message;
    node.hidden = false;
  }

  private _trans: TranslationBundle;
  private _rendermime: IRenderMimeRegistry | null;
  private _open: (link: EventLink) => void;
  private _model: IModel | null = null;
  private _role = 'viewer';
  private _card: IModelCard | null = null;
  private _cardDirty = false;
  private _previewTimer: number | undefined;
  private _description!: HTMLElement;
  private _aliases!: HTMLElement;
  private _error!: HTMLElement;
  private _noVersions!: HTMLElement;
  private _versions!: HTMLElement;
  private _versionRows!: HTMLElement;
  private _runInput!: HTMLInputElement;
  private _registerForm!: HTMLFormElement;
  private _registerError!: HTMLElement;
  private _versionSelect!: HTMLSelectElement;
  private _aliasSelect!: HTMLSelectElement;
  private _noteInput!: HTMLInputElement;
  private _requestForm!: HTMLFormElement;
  private _requestError!: HTMLElement;
  private _promotions!: HTMLElement;
  private _promotionsEmpty!: HTMLElement;
  private _promotionsError!: HTMLElement;
  private _fieldInputs!: Map<string, HTMLTextAreaElement>;
  private _markdown!: HTMLTextAreaElement;
  private _preview!: HTMLElement;
  private _cardMeta!: HTMLElement;
  private _cardError!: HTMLElement;
  private _cardNote!: HTMLElement;
  private _saveButton!: HTMLButtonElement;
  private _together!: HTMLButtonElement;
  private _cardForm!: HTMLFormElement;
}
