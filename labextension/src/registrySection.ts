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

/** Models a page asks for; a refresh asks for as many as are shown (up to MAX_PAGE). */
const PAGE = 50;
const MAX_PAGE = 500;

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
    ) as HTMLButtonElement;
    this._more.hidden = true;
    this._more.addEventListener('click', () => this._showMore());
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

  /**
   * Show the models of `project` (null: none selected). Loading the same project again (a
   * refresh) keeps as many models as were shown, so pages added with "Show more models" stay.
   */
  async load(project: IProject | null): Promise<void> {
    const slug = project?.slug ?? null;
    const shown = slug !== null && slug === this._slug ? this._list.childElementCount : 0;
    this._slug = slug;
    this.models.hidden = slug === null;
    if (slug !== null) {
      await this._page(slug, null, Math.min(Math.max(shown, PAGE), MAX_PAGE));
    }
  }

  /** Models of `slug` after `cursor` (null: from the first, replacing the list). */
  private async _page(slug: string, cursor: string | null, limit = PAGE): Promise<void> {
    const generation = ++this._generation; // a later load makes this one's answer stale
    this._error.hidden = true;
    this._more.disabled = true;
    try {
      const page = await listModels(slug, cursor, limit);
      if (generation !== this._generation) {
        return;
      }
      const items = page.items.map(m => this._item(slug, m));
      if (cursor) {
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
      if (generation !== this._generation) {
        return;
      }
      if (!cursor) {
        this._list.replaceChildren();
        this._more.hidden = true;
      }
      this._empty.hidden = true;
      this._error.textContent = messageOf(error);
      this._error.hidden = false;
    } finally {
      if (generation === this._generation) {
        this._more.disabled = false;
      }
    }
  }

  private _showMore(): void {
    if (this._slug !== null && this._cursor !== null && !this._more.disabled) {
      void this._page(this._slug, this._cursor);
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
  private _more: HTMLButtonElement;
  private _cursor: string | null = null;
  private _generation = 0;
}
