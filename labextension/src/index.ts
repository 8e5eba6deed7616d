/**
 * Jupyter Workbench in JupyterLab: a left-sidebar panel, palette commands and settings.
 */
import {
  ILabStatus,
  ILayoutRestorer,
  IRouter,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget, WidgetTracker } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { getDocument, getMe, IExperiment } from './api';
import type { ExperimentView } from './experiment';
import { configureCharts } from './chartSettings';
import { activateExamples, OPEN_EXAMPLE } from './examples';
import { mainArea, MainAreaViews } from './mainArea';
import { IPanelSettings, WorkbenchPanel } from './panel';
import { activateRegistry } from './registryPlugin';

const PLUGIN_ID = 'jupyter-workbench:plugin';

export namespace CommandIDs {
  export const open = 'workbench:open';
  export const newProject = 'workbench:new-project';
  export const openDocument = 'workbench:open-document';
  export const openDocumentFromURL = 'workbench:open-document-from-url';
  export const openDataset = 'workbench:open-dataset';
  export const openExperiment = 'workbench:open-experiment';
  export const compareRuns = 'workbench:compare-selected-runs';
}

/** The sidebar reloads once the lab has stayed idle this long after being busy. */
const IDLE_RELOAD_MS = 1000;

/** ?workbench-document=ID in a lab URL opens that document (a link to share). */
const DOCUMENT_URL = /[?&]workbench-document=([0-9a-f]{32})/;

/** A flask on a bench: the sidebar tab's icon (themed through jp-icon3). */
export const workbenchIcon = new LabIcon({
  name: 'jupyter-workbench:icon',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" viewBox="0 0 24 24">' +
    '<g class="jp-icon3" fill="#616161">' +
    '<path d="M9 2h6v2h-1v5.2l4.9 8.1c.8 1.3-.2 2.7-1.7 2.7H6.8c-1.5 0-2.5-1.4-1.7-2.7L10 9.2V4H9V2zm3 9.3L9.5 15h5L12 11.3z"/>' +
    '<rect x="2" y="21" width="20" height="2" rx="1"/>' +
    '</g></svg>'
});

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'The Jupyter Workbench sidebar: projects, members, datasets and documents.',
  autoStart: true,
  optional: [
    ICommandPalette,
    ISettingRegistry,
    ILayoutRestorer,
    ITranslator,
    IRouter,
    IRenderMimeRegistry,
    ILauncher,
    IDefaultFileBrowser,
    ILabStatus
  ],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    settingRegistry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null,
    translator: ITranslator | null,
    router: IRouter | null,
    rendermime: IRenderMimeRegistry | null,
    launcher: ILauncher | null,
    browser: IDefaultFileBrowser | null,
    status: ILabStatus | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyter_workbench');
    const views = new MainAreaViews(app, status);

    /** Open a document's collaborative editor (the editor code loads on first use). */
    const openDocument = async (id: string): Promise<void> => {
      const widget = await views.show(
        `document:${id}`,
        async () => {
          const [{ DocumentEditor }, record, me] = await Promise.all([
            import('./editor'),
            getDocument(id),
            getMe().catch(() => null)
          ]);
          const user = me
            ? { username: me.username, name: me.display_name || me.username }
            : undefined;
          const editor = new DocumentEditor(record, trans, user, rendermime);
          return mainArea(editor, `jp-workbench-document-${id}`, workbenchIcon);
        },
        trans.__('Cannot open the document')
      );
      widget?.content.focusEditor();
    };

    /** Open a dataset's view: versions, files, diff, card (its code loads on first use). */
    const openDataset = async (project: string, name: string): Promise<void> => {
      await views.show(
        `dataset:${project}/${name}`,
        async () => {
          const { DatasetView } = await import('./dataset');
          const openCard = (id: string) => void openDocument(id);
          const view = new DatasetView(project, name, trans, rendermime, openCard);
          // slugs and dataset names have no "/": one id per dataset
          return mainArea(view, `jp-workbench-dataset-${project}/${name}`, workbenchIcon);
        },
        trans.__('Cannot open the dataset')
      );
    };

    // the experiment views, the current one's selection is what "Compare Selected Runs" compares
    const experiments = new WidgetTracker<MainAreaWidget<ExperimentView>>({
      namespace: 'jupyter-workbench-experiments'
    });

    /** Open runs side by side (its code loads on first use). */
    const openCompare = async (runIds: string[]): Promise<void> => {
      await views.show(
        null,
        async () => {
          const { CompareView } = await import('./compare');
          const view = new CompareView(runIds, trans);
          const id = `jp-workbench-compare-${runIds.join('-').slice(0, 200)}-${Date.now()}`;
          return mainArea(view, id, workbenchIcon);
        },
        trans.__('Cannot compare the runs'),
        'split-right'
      );
    };

    /** Open an experiment's view: runs table, charts, bands (its code loads on first use). */
    const openExperiment = async (
      project: string,
      experiment: IExperiment,
      select: string[] = []
    ): Promise<void> => {
      const widget = await views.show(
        `experiment:${project}/${experiment.name}`,
        async () => {
          const { ExperimentView } = await import('./experiment');
          const view = new ExperimentView(
            project,
            experiment,
            trans,
            ids => app.commands.execute(CommandIDs.compareRuns, { runs: ids }),
            id => void openDocument(id)
          );
          const id = `jp-workbench-experiment-${project}/${experiment.mlflow_experiment_id}`;
          const widget = mainArea(view, id, workbenchIcon);
          void experiments.add(widget);
          return widget;
        },
        trans.__('Cannot open the experiment')
      );
      if (widget && select.length) {
        (widget as MainAreaWidget<ExperimentView>).content.selectWhenLoaded(select);
      }
    };

    const openSettings = async (project: string): Promise<void> => {
      await views.show(
        `settings:${project}`,
        async () => {
          const { ProjectSettingsView } = await import('./projectSettings');
          const view = new ProjectSettingsView(project, trans, () => void panel.refresh());
          return mainArea(view, `jp-workbench-settings-${project}`, workbenchIcon);
        },
        trans.__('Cannot open the project settings')
      );
    };
    const openTeams = async (): Promise<void> => {
      await views.show(
        'teams',
        async () => {
          const { TeamsView } = await import('./teams');
          const view = new TeamsView(trans, () => void panel.refresh());
          return mainArea(view, 'jp-workbench-teams-view', workbenchIcon);
        },
        trans.__('Cannot open the teams')
      );
    };
    const panel = new WorkbenchPanel(
      trans,
      id => void openDocument(id),
      (project, name) => void openDataset(project, name),
      (project, experiment) => void openExperiment(project, experiment),
      project => void openSettings(project),
      () => void openTeams()
    );
    panel.title.icon = workbenchIcon;
    app.shell.add(panel, 'left', { rank: 150 });
    restorer?.add(panel, panel.id);

    app.commands.addCommand(CommandIDs.open, {
      label: trans.__('Workbench: Open Workbench'),
      caption: trans.__('Show the Workbench sidebar'),
      icon: workbenchIcon,
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(CommandIDs.newProject, {
      label: trans.__('Workbench: New Project'),
      caption: trans.__('Create a Workbench project'),
      execute: () => {
        app.shell.activateById(panel.id);
        panel.focusNewProject();
      }
    });
    app.commands.addCommand(CommandIDs.openDocument, {
      label: trans.__('Workbench: Open Document'),
      caption: trans.__('Open a collaborative workbench document by its id'),
      execute: args => openDocument(String(args.id ?? ''))
    });
    app.commands.addCommand(CommandIDs.openDataset, {
      label: trans.__('Workbench: Open Dataset'),
      caption: trans.__('Open a dataset: its versions, files, diff and card'),
      execute: args => openDataset(String(args.project ?? ''), String(args.name ?? ''))
    });
    app.commands.addCommand(CommandIDs.openExperiment, {
      label: trans.__('Workbench: Open Experiment'),
      caption: trans.__('Open an experiment: its runs, metric charts and bands'),
      execute: args =>
        openExperiment(
          String(args.project ?? ''),
          {
            name: String(args.name ?? ''),
            mlflow_experiment_id: String(args.id ?? ''),
            mlflow_name: '',
            description: null,
            created_at: ''
          },
          Array.isArray(args.select) ? args.select.map(String) : []
        )
    });
    /** The runs to compare: given, or those selected in the current experiment view. */
    const runsToCompare = (args: { runs?: unknown }): string[] =>
      Array.isArray(args.runs)
        ? args.runs.map(String)
        : (experiments.currentWidget?.content.selectedRuns ?? []);
    app.commands.addCommand(CommandIDs.compareRuns, {
      label: trans.__('Workbench: Compare Selected Runs'),
      caption: trans.__('Params that differ, metrics and parallel coordinates of the selected runs'),
      isEnabled: args => runsToCompare(args).length >= 2,
      execute: args => openCompare(runsToCompare(args))
    });
    app.commands.addCommand(CommandIDs.openDocumentFromURL, {
      execute: args => {
        const match = DOCUMENT_URL.exec(String((args as { search?: string }).search ?? ''));
        return match ? openDocument(match[1]) : undefined;
      }
    });
    router?.register({ command: CommandIDs.openDocumentFromURL, pattern: DOCUMENT_URL });

    if (palette) {
      const category = trans.__('Workbench');
      palette.addItem({ command: CommandIDs.open, category });
      palette.addItem({ command: CommandIDs.newProject, category });
      palette.addItem({ command: CommandIDs.compareRuns, category });
    }

    // models, activity, the launcher card and "Commit to dataset..." (registryPlugin.ts)
    const configureActivity = activateRegistry({
      app,
      panel,
      trans,
      icon: workbenchIcon,
      views,
      palette,
      rendermime,
      launcher,
      browser
    });

    // code a kernel has just run may have made a project or a dataset (wb.create_project,
    // wb.datasets.commit): the sidebar, if shown, reloads once the lab has settled (a burst
    // of busy moments -- completions, a cell after a cell -- gives one reload, after the last)
    if (status) {
      let timer: number | undefined;
      status.busySignal.connect((_, busy) => {
        window.clearTimeout(timer);
        if (!busy) {
          timer = window.setTimeout(() => {
            if (!status.isBusy && panel.isVisible) {
              void panel.refresh();
            }
          }, IDLE_RELOAD_MS);
        }
      });
    }

    // the example notebooks: launcher cards, palette items, "New here?" in the sidebar
    void activateExamples({ app, trans, icon: workbenchIcon, launcher, palette, browser }).then(
      examples => {
        const quickstart = examples.find(example => example.name === 'quickstart');
        if (quickstart) {
          panel.offerExample(
            trans.__('Open the quickstart notebook'),
            quickstart.description,
            () => void app.commands.execute(OPEN_EXAMPLE, { name: quickstart.name })
          );
        }
      }
    );

    if (settingRegistry) {
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          const apply = () => {
            panel.configure(settings.composite as unknown as IPanelSettings);
            configureCharts(settings.composite as Record<string, unknown>);
            configureActivity(Number(settings.composite.refreshInterval ?? 60));
          };
          apply();
          settings.changed.connect(apply);
        })
        .catch(reason => {
          console.warn('jupyter-workbench: could not load its settings', reason);
        });
    }
  }
};

export default plugin;
