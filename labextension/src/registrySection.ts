/**
 * The sidebar's "Models" section (the selected project's registered models, each opening its
 * model view) and "Activity" section (a button to the activity view). Added to the panel by
 * index.ts through WorkbenchPanel.addSection.
 */
import { TranslationBundle } from '@jupyterlab/translation';

import { IProject } from './api';
import { PagedList } from './pagedList';
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
    this._list = new PagedList<IModelSummary>({
      listClass: 'jp-WorkbenchPanel-models',
      listLabel: trans.__('Registered models of the selected project'),
      emptyClass: 'jp-WorkbenchPanel-modelsEmpty',
      emptyText: () =>
        trans.__(
          'No registered models yet. Log a model in a run, then register it: %1',
          'wb.models.register(run, "NAME")'
        ),
      moreClass: 'jp-WorkbenchPanel-moreModels',
      moreLabel: trans.__('Show more models'),
      fetch: listModels,
      render: (slug, model) => this._item(slug, model)
    });
    this.models = h(
      'section',
      { class: 'jp-WorkbenchPanel-section jp-WorkbenchPanel-modelsSection' },
      h('h3', {}, trans.__('Models')),
      ...this._list.nodes
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
    this.models.hidden = slug === null;
    await this._list.load(slug);
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
  private _list: PagedList<IModelSummary>;
}
