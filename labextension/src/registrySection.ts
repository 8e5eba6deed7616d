/**
 * The sidebar's "Models" section (the selected project's registered models, each opening its
 * model view) and "Activity" section (a button to the activity view). Added to the panel by
 * index.ts through WorkbenchPanel.addSection.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { IProject, messageOf } from './api';
import { listKeyTarget } from './keys';
import { IModelSummary, listModels } from './registryApi';
import { h } from './dom';

export class ModelsSection {
  constructor(
    trans: TranslationBundle,
    openModel: (project: string, name: string) => void,
    openActivity: () => void
  ) {
    this._trans = trans;
    this._openModel = openModel;
    this._error = h('div', { class: 'jp-WorkbenchPanel-error', role: 'alert' });
    this._error.hidden = true;
    this._empty = h('p', { class: 'jp-WorkbenchPanel-modelsEmpty' });
    this._empty.hidden = true;
    this._list = h('ul', {
      class: 'jp-WorkbenchPanel-models',
      'aria-label': trans.__('Registered models of the selected project')
    });
    this._list.addEventListener('keydown', event => {
      const items = Array.from(this._list.children) as HTMLElement[];
      const next = listKeyTarget(event.key, items.indexOf(document.activeElement as HTMLElement), items.length);
      if (next !== null) {
        event.preventDefault();
        items[next].focus();
      }
    });
    this._more = h(
      'button',
      { class: 'jp-mod-styled jp-WorkbenchPanel-moreModels', type: 'button' },
      trans.__('Show more models')
    );
    this._more.hidden = true;
    this._more.addEventListener('click', () => void this._page(true));
    this.models = h(
      'section',
      { class: 'jp-WorkbenchPanel-section jp-WorkbenchPanel-modelsSection' },
      h('h3', {}, trans.__('Models')),
      this._error,
      this._empty,
      this._list,
      this._more
    );
    this.models.hidden = true;
    const activity = h(
      'button',
      { class: 'jp-mod-styled jp-WorkbenchPanel-activity', type: 'button' },
      trans.__('Show recent activity')
    );
    activity.addEventListener('click', () => openActivity());
    this.activity = h(
      'section',
      { class: 'jp-WorkbenchPanel-section' },
      h('h3', {}, trans.__('Activity')),
      activity
    );
  }

  /** The section nodes, for the panel. */
  readonly models: HTMLElement;
  readonly activity: HTMLElement;

  /** Show the models of `project` (null: none selected). */
  async load(project: IProject | null): Promise<void> {
    const slug = project?.slug ?? null;
    this._slug = slug;
    this._cursor = null;
    this.models.hidden = slug === null;
    if (slug !== null) {
      await this._page(false);
    }
  }

  /** The first page of models (`more`: the next one, appended). */
  private async _page(more: boolean): Promise<void> {
    const slug = this._slug;
    if (slug === null) {
      return;
    }
    this._error.hidden = true;
    try {
      const page = await listModels(slug, more ? this._cursor : null);
      if (slug !== this._slug) {
        return;
      }
      const items = page.items.map(m => this._item(slug, m));
      if (more) {
        this._list.append(...items);
      } else {
        this._list.replaceChildren(...items);
      }
      this._cursor = page.next_cursor;
      this._more.hidden = page.next_cursor === null;
      this._empty.hidden = this._list.childElementCount > 0;
      this._empty.textContent = this._trans.__(
        'No registered models yet. Log a model in a run, then register it: %1',
        'wb.models.register(run, "NAME")'
      );
    } catch (error) {
      if (slug !== this._slug) {
        return;
      }
      if (!more) {
        this._list.replaceChildren();
        this._more.hidden = true;
      }
      this._empty.hidden = true;
      this._error.textContent = messageOf(error);
      this._error.hidden = false;
    }
  }

  private _item(slug: string, model: IModelSummary): HTMLElement {
    const trans = this._trans;
    const aliases = Object.entries(model.aliases)
      .map(([alias, version]) => `${alias}: v${version}`)
      .join(', ');
    const latest = model.missing
      ? trans.__('not in MLflow')
      : model.latest_versions.length
        ? trans.__('v%1', model.latest_versions[model.latest_versions.length - 1])
        : trans.__('no version');
    const item = h(
      'li',
      {
        class: 'jp-WorkbenchPanel-model',
        'data-model': model.name,
        tabindex: '0',
        title: model.description || model.name,
        'aria-label': trans.__('Open model %1 (%2)', model.name, aliases || latest)
      },
      h('span', { class: 'jp-WorkbenchPanel-projectName' }, model.name),
      h('span', { class: 'jp-WorkbenchPanel-role' }, aliases || latest)
    );
    item.addEventListener('click', () => this._openModel(slug, model.name));
    item.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        this._openModel(slug, model.name);
      }
    });
    return item;
  }

  private _trans: TranslationBundle;
  private _openModel: (project: string, name: string) => void;
  private _slug: string | null = null;
  private _error: HTMLElement;
  private _empty: HTMLElement;
  private _list: HTMLElement;
  private _more: HTMLElement;
  private _cursor: string | null = null;
}
