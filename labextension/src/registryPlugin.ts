/**
 * Wires the registry and activity views into the lab (called from index.ts): the sidebar's Models
 * and Activity sections, the model and activity views, the "Workbench" launcher card, and the
 * file browser's "Commit to dataset..." entry on folders and .csv/.parquet files.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, MainAreaWidget } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import type { ActivityView } from './activity';
import { isCommittable, underWay } from './commitFormat';
import { mainArea, MainAreaViews } from './mainArea';
import { NotificationFeed } from './notify';
import { WorkbenchPanel } from './panel';
import { EventLink } from './registryFormat';
import { ModelsSection } from './registrySection';

export namespace RegistryCommandIDs {
  export const openModel = 'workbench:open-model';
  export const openActivity = 'workbench:open-activity';
  export const overview = 'workbench:overview';
  export const commitToDataset = 'workbench:commit-to-dataset';
}

export interface IRegistryOptions {
  app: JupyterFrontEnd;
  panel: WorkbenchPanel;
  trans: TranslationBundle;
  icon: LabIcon;
  views: MainAreaViews;
  palette: ICommandPalette | null;
  rendermime: IRenderMimeRegistry | null;
  launcher: ILauncher | null;
  browser: IDefaultFileBrowser | null;
}

/** Registers the registry views and commands; returns what applies the settings' refresh
 * interval (seconds) to the activity view. */
export function activateRegistry(options: IRegistryOptions): (refreshSeconds: number) => void {
  const { app, panel, trans, icon, views, palette, rendermime, launcher, browser } = options;
  let refreshSeconds = 60;

  // what waits for the user, in JupyterLab's notification centre, on the activity's interval
  const feed = new NotificationFeed(trans, () => void openActivity());
  void app.restored.then(() => feed.poll());

  const openLink = (link: EventLink): void => {
    switch (link.kind) {
      case 'model':
        void openModel(link.project, link.name);
        break;
      case 'dataset':
        void app.commands.execute('workbench:open-dataset', {
          project: link.project,
          name: link.name
        });
        break;
      case 'document':
        void app.commands.execute('workbench:open-document', { id: link.id });
        break;
      case 'run':
        void app.commands.execute('workbench:open-experiment', {
          project: link.project,
          name: link.experiment,
          id: link.experimentId,
          select: [link.runId]
        });
        break;
      default:
        app.shell.activateById(panel.id);
    }
  };

  /** A registered model's view (its code loads on first use). */
  const openModel = async (project: string, name: string): Promise<void> => {
    await views.show(
      `model:${project}/${name}`,
      async () => {
        const { ModelView } = await import('./registry');
        const view = new ModelView(project, name, trans, rendermime, openLink);
        return mainArea(view, `jp-workbench-model-${project}/${name}`, icon);
      },
      trans.__('Cannot open the model')
    );
  };

  const activity = (): MainAreaWidget<ActivityView> | undefined =>
    views.get('activity') as MainAreaWidget<ActivityView> | undefined;

  /** The activity view (one; its code loads on first use; shown again, it reloads). */
  const openActivity = async (): Promise<void> => {
    const open = activity();
    if (open) {
      void open.content.refresh();
    }
    await views.show(
      'activity',
      async () => {
        const { ActivityView } = await import('./activity');
        const view = new ActivityView(trans, openLink, () => void feed.poll());
        view.configure(refreshSeconds);
        return mainArea(view, 'jp-workbench-activity', icon);
      },
      trans.__('Cannot open the activity')
    );
  };

  const section = new ModelsSection(
    trans,
    (project, name) => void openModel(project, name),
    () => void openActivity()
  );
  panel.addSection(section.models, project => void section.load(project));
  panel.addSection(section.activity, () => undefined);

  app.commands.addCommand(RegistryCommandIDs.openModel, {
    label: trans.__('Workbench: Open Model'),
    caption: trans.__('Open a registered model: versions, lineage, promotions and card'),
    execute: args => openModel(String(args.project ?? ''), String(args.name ?? ''))
  });
  app.commands.addCommand(RegistryCommandIDs.openActivity, {
    label: trans.__('Workbench: Show Activity'),
    caption: trans.__('Recent events of your projects'),
    icon,
    execute: () => openActivity()
  });
  app.commands.addCommand(RegistryCommandIDs.overview, {
    label: args => (args.isLauncher ? trans.__('Workbench') : trans.__('Workbench: Overview')),
    caption: trans.__('Open the Workbench sidebar and the recent activity of your projects'),
    icon,
    execute: async () => {
      app.shell.activateById(panel.id);
      await openActivity();
    }
  });

  const openCommitted = (project: string, name: string): void => {
    void app.commands.execute('workbench:open-dataset', { project, name });
  };
  // a commit cut off by a reload or a closed tab is offered again ("Resume"); the commit code
  // loads only then
  void app.restored.then(async () => {
    if (underWay().list().length) {
      const { offerInterruptedCommits } = await import('./commit');
      offerInterruptedCommits(trans, app.serviceManager.contents, openCommitted);
    }
  });

  const selected = () =>
    browser ? Array.from(browser.selectedItems()).filter(isCommittable) : [];
  app.commands.addCommand(RegistryCommandIDs.commitToDataset, {
    label: trans.__('Commit to dataset…'),
    caption: trans.__('Commit this folder or file as a new version of a Workbench dataset'),
    icon,
    isVisible: () => selected().length === 1,
    execute: async () => {
      const item = selected()[0];
      if (!item) {
        return;
      }
      const { commitWithProgress } = await import('./commit');
      const contents = app.serviceManager.contents;
      await commitWithProgress(trans, contents, item.path, panel.selected ?? '', openCommitted);
    }
  });
  app.contextMenu.addItem({
    command: RegistryCommandIDs.commitToDataset,
    selector: '.jp-DirListing-item[data-isdir]',
    rank: 20
  });

  if (launcher) {
    launcher.add({
      command: RegistryCommandIDs.overview,
      category: trans.__('Workbench'),
      rank: 0,
      args: { isLauncher: true }
    });
  }
  if (palette) {
    const category = trans.__('Workbench');
    palette.addItem({ command: RegistryCommandIDs.openActivity, category });
    palette.addItem({ command: RegistryCommandIDs.overview, category });
  }
  return seconds => {
    refreshSeconds = seconds;
    activity()?.content.configure(refreshSeconds);
    feed.configure(refreshSeconds);
  };
}
