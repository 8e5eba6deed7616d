/**
 * The Workbench sidebar: a project switcher, a "New project" form and the selected project's
 * members, datasets and documents. Plain DOM in a Lumino widget (no framework: the sidebar
 * stays small and fast).
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import {
  createProject,
  IDataset,
  IDocument,
  IExperiment,
  IMember,
  IPage,
  IProject,
  listDatasets,
  listDocuments,
  listExperiments,
  listMembers,
  listProjects,
  messageOf,
  openDocumentRecord,
  requestAPI
} from './api';
import { commitHints } from './datasetFormat';
import { h } from './dom';
import { PagedList } from './pagedList';

/** Settings the panel reads (schema/plugin.json). */
export interface IPanelSettings {
  defaultProject: string;
  refreshInterval: number;
}

export class WorkbenchPanel extends Widget {
  constructor(
    trans: TranslationBundle,
    openDocument: (id: string) => void = () => undefined,
    openDataset: (project: string, name: string) => void = () => undefined,
    openExperiment: (project: string, experiment: IExperiment) => void = () => undefined,
    openSettings: (project: string) => void = () => undefined,
    openTeams: () => void = () => undefined
  ) {
    super();
    this._trans = trans;
    this._openDocument = openDocument;
    this._openDataset = openDataset;
    this._openExperiment = openExperiment;
    this._openSettings = openSettings;
    this._openTeams = openTeams;
    this.id = 'jupyter-workbench-panel';
    this.addClass('jp-WorkbenchPanel');
    this.title.caption = trans.__('Workbench');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('Workbench'));
    this._build();
  }

  /** The selected project's slug, or null. */
  get selected(): string | null {
    return this._selected;
  }

  /** Apply new settings: default project, auto-refresh. */
  /** Offer, beside "not in any project yet", a button that opens an example notebook. */
  offerExample(label: string, caption: string, open: () => void): void {
    const button = h(
      'button',
      { class: 'jp-mod-styled jp-WorkbenchPanel-example', type: 'button', title: caption },
      label
    );
    button.addEventListener('click', open);
    this._empty.append(h('p', {}, this._trans.__('New here?'), ' ', button));
  }

  configure(settings: IPanelSettings): void {
    this._settings = settings;
    window.clearInterval(this._timer);
    this._timer = undefined;
    if (settings.refreshInterval > 0) {
      this._timer = window.setInterval(() => {
        if (this.isVisible) {
          void this.refresh();
        }
      }, settings.refreshInterval * 1000);
    }
    // the default project wins until the user picks one (settings may load after the list)
    if (!this._userChose && settings.defaultProject && settings.defaultProject !== this._selected) {
      this._selected = null;
      if (this._loaded) {
        void this.refresh();
      }
    }
  }

  /** Append a section that follows the selected project: `onProject` is called with it (or
   * null) each time the project list is drawn (a selection, a reload). */
  addSection(node: HTMLElement, onProject: (project: IProject | null) => void): void {
    this.node.append(node);
    this._sections.push(onProject);
  }

  /** Put the cursor in the "New project" form. */
  focusNewProject(): void {
    // after the command palette (or any dialog that ran the command) has put focus back; the
    // shell may move focus once more while the panel activates: take it back for a moment
    for (const delay of [50, 250, 600]) {
      window.setTimeout(() => {
        if (this.isVisible && document.activeElement !== this._nameInput) {
          this._nameInput.focus();
        }
      }, delay);
    }
  }

  /** Reload the projects (and the selected project's members). */
  async refresh(): Promise<void> {
    // one reload at a time: a call while one runs makes one more after it (an older answer
    // is never drawn over a newer one)
    if (this._refreshing) {
      this._refreshAgain = true;
      return this._refreshing;
    }
    this._refreshing = (async () => {
      do {
        this._refreshAgain = false;
        await this._reload();
      } while (this._refreshAgain);
    })();
    try {
      await this._refreshing;
    } finally {
      this._refreshing = null;
    }
  }

  private async _reload(): Promise<void> {
    this._listError.hidden = true;
    this.node.setAttribute('aria-busy', 'true');
    try {
      const page = await listProjects();
      const answered = performance.now();
      this._projects = page.items;
      const slugs = this._projects.map(p => p.slug);
      if (!this._selected || !slugs.includes(this._selected)) {
        const preferred = this._settings.defaultProject;
        this._selected = slugs.includes(preferred) ? preferred : (slugs[0] ?? null);
      }
      this._renderProjects();
      // how long the list took to show once the API answered (to the next frame painted)
      requestAnimationFrame(() => {
        this.node.dataset.renderMs = (performance.now() - answered).toFixed(1);
      });
      await Promise.all([
        this._loadMembers(),
        this._loadDatasets(),
        this._loadExperiments(),
        this._loadDocuments()
      ]);
    } catch (error) {
      this._showError(this._listError, messageOf(error));
    } finally {
      this._loaded = true;
      this.node.setAttribute('aria-busy', 'false');
      this.node.dataset.loaded = 'true';
    }
  }

  dispose(): void {
    window.clearInterval(this._timer);
    super.dispose();
  }

  protected onAfterAttach(): void {
    if (!this._loaded) {
      void this.refresh();
    }
  }

  private _build(): void {
    const trans = this._trans;
    const refresh = h(
      'button',
      {
        class: 'jp-WorkbenchPanel-refresh jp-mod-styled',
        type: 'button',
        title: trans.__('Reload the projects'),
        'aria-label': trans.__('Reload the projects')
      },
      '⟳'
    );
    refresh.addEventListener('click', () => void this.refresh());
    const header = h(
      'header',
      { class: 'jp-WorkbenchPanel-header' },
      h('h2', {}, trans.__('Workbench')),
      refresh
    );

    this._listError = h('div', { class: 'jp-WorkbenchPanel-error', role: 'alert' });
    this._listError.hidden = true;
    this._projectList = h('ul', {
      class: 'jp-WorkbenchPanel-projects',
      role: 'listbox',
      'aria-label': trans.__('Your projects')
    });
    this._projectList.addEventListener('keydown', event => this._onListKey(event));
    this._empty = h(
      'div',
      { class: 'jp-WorkbenchPanel-empty' },
      h(
        'p',
        {},
        trans.__(
          'You are not in any project yet. Create one below: it holds your datasets, experiments and models, and you can add teammates to it.'
        )
      )
    );
    this._empty.hidden = true;

    this._nameInput = h('input', {
      class: 'jp-mod-styled',
      name: 'name',
      type: 'text',
      placeholder: trans.__('Project name'),
      'aria-label': trans.__('New project name')
    }) as HTMLInputElement;
    this._formError = h('div', {
      class: 'jp-WorkbenchPanel-error',
      role: 'alert',
      'aria-live': 'assertive'
    });
    this._formError.hidden = true;
    const form = h(
      'form',
      { class: 'jp-WorkbenchPanel-new', 'aria-label': trans.__('New project') },
      h('h3', {}, trans.__('New project')),
      this._nameInput,
      h(
        'button',
        { class: 'jp-mod-styled jp-mod-accept', type: 'submit' },
        trans.__('Create')
      ),
      this._formError
    ) as HTMLFormElement;
    form.addEventListener('submit', event => {
      event.preventDefault();
      void this._create(form);
    });

    this._membersTitle = h('h3', {}, trans.__('Members'));
    this._memberList = new PagedList<IMember>({
      listClass: 'jp-WorkbenchPanel-members',
      listLabel: trans.__('Members of the selected project'),
      emptyClass: 'jp-WorkbenchPanel-membersEmpty',
      emptyText: () => trans.__('No members.'),
      moreClass: 'jp-WorkbenchPanel-moreMembers',
      moreLabel: trans.__('Show more members'),
      fetch: listMembers,
      render: (_slug, member) => this._memberItem(member)
    });
    const manage = h(
      'button',
      {
        class: 'jp-mod-styled jp-WorkbenchPanel-manage',
        type: 'button',
        title: trans.__('Details, members, invitations and access requests of the project')
      },
      trans.__('Manage project…')
    );
    manage.addEventListener('click', () => {
      if (this._selected) {
        this._openSettings(this._selected);
      }
    });
    this._members = h(
      'section',
      { class: 'jp-WorkbenchPanel-section' },
      this._membersTitle,
      ...this._memberList.nodes,
      manage
    );
    this._members.hidden = true;

    // the selected project's datasets
    this._datasetList = new PagedList<IDataset>({
      listClass: 'jp-WorkbenchPanel-datasets',
      listLabel: trans.__('Datasets of the selected project'),
      emptyClass: 'jp-WorkbenchPanel-datasetsEmpty',
      emptyText: slug => {
        const hints = commitHints(slug);
        return trans.__(
          'No datasets yet. Commit a folder as the first version, in a notebook: %1 or from a terminal: %2',
          hints.python,
          hints.shell
        );
      },
      moreClass: 'jp-WorkbenchPanel-moreDatasets',
      moreLabel: trans.__('Show more datasets'),
      fetch: listDatasets,
      render: (slug, dataset) => this._datasetItem(slug, dataset)
    });
    this._datasets = h(
      'section',
      { class: 'jp-WorkbenchPanel-section' },
      h('h3', {}, trans.__('Datasets')),
      ...this._datasetList.nodes
    );
    this._datasets.hidden = true;

    // the selected project's experiments
    this._experimentList = new PagedList<IExperiment>({
      listClass: 'jp-WorkbenchPanel-experiments',
      listLabel: trans.__('Experiments of the selected project'),
      emptyClass: 'jp-WorkbenchPanel-experimentsEmpty',
      emptyText: slug =>
        trans.__(
          'No experiments yet. Start a run in a notebook: %1 (the experiment is made on first use).',
          `with wb.run(experiment="baseline", project=${JSON.stringify(slug)}) as run: run.log({"loss": 0.5})`
        ),
      moreClass: 'jp-WorkbenchPanel-moreExperiments',
      moreLabel: trans.__('Show more experiments'),
      fetch: listExperiments,
      render: (slug, experiment) => this._experimentItem(slug, experiment)
    });
    this._experiments = h(
      'section',
      { class: 'jp-WorkbenchPanel-section' },
      h('h3', {}, trans.__('Experiments')),
      ...this._experimentList.nodes
    );
    this._experiments.hidden = true;

    // the selected project's collaborative documents
    this._docsError = h('div', { class: 'jp-WorkbenchPanel-error', role: 'alert' });
    this._docsError.hidden = true;
    this._docList = new PagedList<IDocument>({
      listClass: 'jp-WorkbenchPanel-documents',
      listLabel: trans.__('Documents of the selected project'),
      emptyClass: 'jp-WorkbenchPanel-documentsEmpty',
      emptyText: () =>
        trans.__('No documents yet. Open the README or start notes below: both are co-edited live.'),
      moreClass: 'jp-WorkbenchPanel-moreDocuments',
      moreLabel: trans.__('Show more documents'),
      fetch: listDocuments,
      render: (_slug, doc) => this._documentItem(doc)
    });
    const readme = h(
      'button',
      { class: 'jp-mod-styled jp-WorkbenchPanel-readme', type: 'button' },
      trans.__('Open README')
    );
    readme.addEventListener('click', () => void this._openRecord('readme', ''));
    this._notesInput = h('input', {
      class: 'jp-mod-styled',
      'aria-label': trans.__('Name of new notes'),
      placeholder: trans.__('Notes name'),
      title: trans.__('A name for the new notes, e.g. meeting-2026-11')
    }) as HTMLInputElement;
    const notes = h(
      'form',
      { class: 'jp-WorkbenchPanel-newNotes' },
      this._notesInput,
      h('button', { class: 'jp-mod-styled', type: 'submit' }, trans.__('New notes'))
    );
    notes.addEventListener('submit', event => {
      event.preventDefault();
      void this._openRecord('notes', this._notesInput.value.trim());
    });
    this._docs = h(
      'section',
      { class: 'jp-WorkbenchPanel-section' },
      h('h3', {}, trans.__('Documents')),
      this._docsError,
      ...this._docList.nodes,
      readme,
      notes
    );
    this._docs.hidden = true;

    this.node.append(
      header,
      h(
        'section',
        { class: 'jp-WorkbenchPanel-section' },
        h('h3', {}, trans.__('Projects')),
        this._listError,
        this._empty,
        this._projectList
      ),
      h('section', { class: 'jp-WorkbenchPanel-section' }, form, this._buildOthers()),
      this._members,
      this._datasets,
      this._experiments,
      this._docs
    );
  }

  /** "Other projects you can see": public and team projects you are not in, each with a
   * request to join (its admins answer it). Loaded when opened. */
  private _buildOthers(): HTMLElement {
    const trans = this._trans;
    const list = h('ul', {
      class: 'jp-WorkbenchPanel-others',
      'aria-label': trans.__('Projects you can see but are not in')
    });
    const details = h(
      'details',
      { class: 'jp-WorkbenchPanel-othersBox' },
      h('summary', {}, trans.__('Other projects you can see')),
      list
    ) as HTMLDetailsElement;
    details.addEventListener('toggle', async () => {
      if (!details.open) {
        return;
      }
      list.replaceChildren(h('li', {}, trans.__('Loading…')));
      try {
        const page = await requestAPI<IPage<IProject>>('projects?scope=all&limit=200');
        const mine = new Set(this._projects.map(p => p.slug));
        const others = page.items.filter(p => !mine.has(p.slug));
        list.replaceChildren(
          ...(others.length
            ? others.map(p => this._otherItem(p))
            : [h('li', {}, trans.__('None: every project you can see, you are in.'))])
        );
      } catch (error) {
        list.replaceChildren(h('li', { class: 'jp-WorkbenchPanel-error' }, messageOf(error)));
      }
    });
    const teams = h(
      'button',
      {
        class: 'jp-mod-styled jp-WorkbenchPanel-teams',
        type: 'button',
        title: trans.__('Your teams: create one, add and remove its members')
      },
      trans.__('Teams…')
    );
    teams.addEventListener('click', () => this._openTeams());
    return h('div', {}, details, teams);
  }

  private _otherItem(project: IProject): HTMLElement {
    const trans = this._trans;
    const role = h(
      'select',
      { class: 'jp-mod-styled', 'aria-label': trans.__('Role to ask for in %1', project.name) },
      h('option', { value: 'viewer' }, trans.__('viewer')),
      h('option', { value: 'editor' }, trans.__('editor'))
    ) as HTMLSelectElement;
    const ask = h(
      'button',
      { class: 'jp-mod-styled', type: 'button', 'aria-label': trans.__('Ask to join %1', project.name) },
      trans.__('Ask to join')
    ) as HTMLButtonElement;
    const note = h('div', { role: 'status' });
    note.hidden = true;
    ask.addEventListener('click', async () => {
      ask.disabled = true;
      try {
        await requestAPI(`projects/${encodeURIComponent(project.slug)}/access-requests`, {
          method: 'POST',
          body: JSON.stringify({ role: role.value })
        });
        note.textContent = trans.__('Asked: its admins will answer.');
        note.className = 'jp-WorkbenchPanel-role';
      } catch (error) {
        note.textContent = messageOf(error);
        note.className = 'jp-WorkbenchPanel-error';
        ask.disabled = false;
      }
      note.hidden = false;
    });
    return h(
      'li',
      { class: 'jp-WorkbenchPanel-other', 'data-slug': project.slug },
      h('span', { class: 'jp-WorkbenchPanel-projectName' }, project.name),
      h('span', { class: 'jp-WorkbenchPanel-otherAsk' }, role, ask),
      note
    );
  }

  private _renderProjects(): void {
    const trans = this._trans;
    this._empty.hidden = this._projects.length > 0;
    this._projectList.replaceChildren(
      ...this._projects.map(project => {
        const selected = project.slug === this._selected;
        const item = h(
          'li',
          {
            class: 'jp-WorkbenchPanel-project' + (selected ? ' jp-mod-selected' : ''),
            role: 'option',
            tabindex: selected ? '0' : '-1',
            'aria-selected': String(selected),
            'data-slug': project.slug,
            title: project.description || project.name
          },
          h('span', { class: 'jp-WorkbenchPanel-projectName' }, project.name),
          h(
            'span',
            { class: 'jp-WorkbenchPanel-role' },
            project.archived ? trans.__('%1 · archived', project.my_role) : project.my_role
          )
        );
        item.addEventListener('click', () => void this._select(project.slug));
        return item;
      })
    );
    const shown = this._projects.find(p => p.slug === this._selected) ?? null;
    this._sections.forEach(onProject => onProject(shown));
  }

  private _onListKey(event: KeyboardEvent): void {
    const index = this._projects.findIndex(p => p.slug === this._selected);
    let next = index;
    if (event.key === 'ArrowDown') {
      next = Math.min(index + 1, this._projects.length - 1);
    } else if (event.key === 'ArrowUp') {
      next = Math.max(index - 1, 0);
    } else {
      return;
    }
    event.preventDefault();
    if (next !== index && next >= 0) {
      void this._select(this._projects[next].slug).then(() => {
        (this._projectList.querySelector('[aria-selected="true"]') as HTMLElement)?.focus();
      });
    }
  }

  private async _select(slug: string): Promise<void> {
    this._userChose = true;
    this._selected = slug;
    this._renderProjects();
    await Promise.all([
        this._loadMembers(),
        this._loadDatasets(),
        this._loadExperiments(),
        this._loadDocuments()
      ]);
  }

  private async _loadDatasets(): Promise<void> {
    this._datasets.hidden = this._selected === null;
    await this._datasetList.load(this._selected);
  }

  private _datasetItem(slug: string, dataset: IDataset): HTMLElement {
    const trans = this._trans;
    const version =
      dataset.latest_version === null
        ? trans.__('no version')
        : trans.__('v%1', dataset.latest_version);
    const item = h(
      'li',
      {
        class: 'jp-WorkbenchPanel-dataset',
        'data-dataset': dataset.name,
        tabindex: '0',
        title: dataset.description || dataset.name,
        'aria-label': trans.__('Open dataset %1 (%2)', dataset.name, version)
      },
      h('span', { class: 'jp-WorkbenchPanel-projectName' }, dataset.name),
      h('span', { class: 'jp-WorkbenchPanel-role' }, version)
    );
    item.addEventListener('click', () => this._openDataset(slug, dataset.name));
    item.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        this._openDataset(slug, dataset.name);
      }
    });
    return item;
  }

  private async _loadExperiments(): Promise<void> {
    this._experiments.hidden = this._selected === null;
    await this._experimentList.load(this._selected);
  }

  private _experimentItem(slug: string, experiment: IExperiment): HTMLElement {
    const item = h(
      'li',
      {
        class: 'jp-WorkbenchPanel-experiment',
        'data-experiment': experiment.name,
        tabindex: '0',
        title: experiment.description || experiment.name,
        'aria-label': this._trans.__('Open experiment %1', experiment.name)
      },
      h('span', { class: 'jp-WorkbenchPanel-projectName' }, experiment.name)
    );
    item.addEventListener('click', () => this._openExperiment(slug, experiment));
    item.addEventListener('keydown', event => {
      if (event.key === 'Enter' || event.key === ' ') {
        event.preventDefault();
        this._openExperiment(slug, experiment);
      }
    });
    return item;
  }

  private async _loadDocuments(): Promise<void> {
    const slug = this._selected;
    this._docs.hidden = slug === null;
    this._docsError.hidden = true;
    await this._docList.load(slug);
  }

  private _documentItem(doc: IDocument): HTMLElement {
    const item = h(
      'li',
      { class: 'jp-WorkbenchPanel-document', 'data-document': doc.id, tabindex: '0' },
      h('span', {}, doc.title || doc.kind),
      h('span', { class: 'jp-WorkbenchPanel-role' }, doc.kind)
    );
    item.addEventListener('click', () => this._openDocument(doc.id));
    item.addEventListener('keydown', event => {
      if (event.key === 'Enter') {
        this._openDocument(doc.id);
      }
    });
    return item;
  }

  private async _openRecord(kind: string, ref: string): Promise<void> {
    const slug = this._selected;
    if (slug === null) {
      return;
    }
    this._docsError.hidden = true;
    try {
      const doc = await openDocumentRecord(slug, kind, ref);
      this._notesInput.value = '';
      this._openDocument(doc.id);
      await this._loadDocuments();
    } catch (error) {
      this._showError(this._docsError, messageOf(error));
    }
  }

  private async _loadMembers(): Promise<void> {
    const slug = this._selected;
    this._members.hidden = slug === null;
    const project = this._projects.find(p => p.slug === slug);
    this._membersTitle.textContent = this._trans.__('Members of %1', project?.name ?? slug ?? '');
    await this._memberList.load(slug);
  }

  private _memberItem(member: IMember): HTMLElement {
    const label =
      member.kind === 'team'
        ? this._trans.__('team %1', member.team?.display_name || member.team?.name || member.member)
        : member.user?.display_name || member.user?.username || member.member;
    return h(
      'li',
      { class: 'jp-WorkbenchPanel-member', 'data-member': member.member },
      h('span', {}, label),
      h('span', { class: 'jp-WorkbenchPanel-role' }, member.role)
    );
  }

  private async _create(form: HTMLFormElement): Promise<void> {
    this._formError.hidden = true;
    const button = form.querySelector('button[type=submit]') as HTMLButtonElement;
    button.disabled = true;
    try {
      const project = await createProject(this._nameInput.value);
      this._nameInput.value = '';
      this._userChose = true;
      this._selected = project.slug;
      await this.refresh();
    } catch (error) {
      this._showError(this._formError, messageOf(error));
      this._nameInput.focus();
    } finally {
      button.disabled = false;
    }
  }

  private _showError(node: HTMLElement, message: string): void {
    node.textContent = message;
    node.hidden = false;
  }

  private _trans: TranslationBundle;
  private _settings: IPanelSettings = { defaultProject: '', refreshInterval: 0 };
  private _timer: number | undefined;
  private _loaded = false;
  private _userChose = false;
  private _projects: IProject[] = [];
  private _selected: string | null = null;
  private _listError!: HTMLElement;
  private _empty!: HTMLElement;
  private _refreshing: Promise<void> | null = null;
  private _refreshAgain = false;
  private _projectList!: HTMLElement;
  private _nameInput!: HTMLInputElement;
  private _formError!: HTMLElement;
  private _members!: HTMLElement;
  private _openSettings: (project: string) => void;
  private _openTeams: () => void;
  private _membersTitle!: HTMLElement;
  private _memberList!: PagedList<IMember>;
  private _openDocument: (id: string) => void;
  private _openDataset: (project: string, name: string) => void;
  private _openExperiment: (project: string, experiment: IExperiment) => void;
  private _experiments!: HTMLElement;
  private _experimentList!: PagedList<IExperiment>;
  private _datasets!: HTMLElement;
  private _datasetList!: PagedList<IDataset>;
  private _docs!: HTMLElement;
  private _docsError!: HTMLElement;
  private _docList!: PagedList<IDocument>;
  private _notesInput!: HTMLInputElement;
  private _sections: ((project: IProject | null) => void)[] = [];
}
