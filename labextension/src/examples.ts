/**
 * The example notebooks (GET/POST {baseUrl}workbench/examples on this Jupyter server): a
 * launcher card each, in the launcher's "Workbench" section, and "Workbench: Open Example..."
 * commands. Opening one copies it into the file browser's folder under a free name
 * (quickstart.ipynb, quickstart-1.ipynb, ...) and opens the copy: the user runs their own.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { ILauncher } from '@jupyterlab/launcher';
import { TranslationBundle } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { messageOf, requestServer } from './api';

export const OPEN_EXAMPLE = 'workbench:open-example';

export interface IExample {
  name: string;
  title: string;
  description: string;
}

function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  return requestServer<T>(URLExt.join('workbench/examples', path), init);
}

export async function listExamples(): Promise<IExample[]> {
  return (await request<{ items: IExample[] }>('')).items;
}

/** Copy example `name` into `folder`; the copy's path. */
export async function copyExample(name: string, folder: string): Promise<string> {
  const body = JSON.stringify({ path: folder });
  const copied = await request<{ path: string }>(encodeURIComponent(name), {
    method: 'POST',
    body
  });
  return copied.path;
}

export interface IExamplesOptions {
  app: JupyterFrontEnd;
  trans: TranslationBundle;
  icon: LabIcon;
  launcher: ILauncher | null;
  palette: ICommandPalette | null;
  browser: IDefaultFileBrowser | null;
}

/** Registers the command and, once the examples are known, their launcher cards and palette
 * items; resolves to the examples offered (none where the server has none or cannot say). */
export async function activateExamples(options: IExamplesOptions): Promise<IExample[]> {
  const { app, trans, icon, launcher, palette, browser } = options;
  const known = new Map<string, IExample>();
  app.commands.addCommand(OPEN_EXAMPLE, {
    label: args => {
      const title = known.get(String(args.name))?.title ?? String(args.name ?? '');
      return args.isLauncher ? title : trans.__('Workbench: Open Example "%1"', title);
    },
    caption: args =>
      known.get(String(args.name))?.description ??
      trans.__('Copy an example notebook into this folder and open it'),
    icon: args => (args.isLauncher ? icon : undefined),
    execute: async args => {
      const name = String(args.name ?? '');
      const folder = browser?.model.path ?? '';
      try {
        const path = await copyExample(name, folder);
        return await app.commands.execute('docmanager:open', { path });
      } catch (error) {
        Notification.error(trans.__('Cannot open the example: %1', messageOf(error)), {
          autoClose: 8000
        });
      }
    }
  });
  let examples: IExample[] = [];
  try {
    examples = await listExamples();
  } catch (error) {
    console.warn('jupyter-workbench: could not list the example notebooks', error);
  }
  examples.forEach((example, rank) => {
    known.set(example.name, example);
    launcher?.add({
      command: OPEN_EXAMPLE,
      category: trans.__('Workbench'),
      rank: rank + 1,
      args: { name: example.name, isLauncher: true }
    });
    palette?.addItem({
      command: OPEN_EXAMPLE,
      category: trans.__('Workbench'),
      args: { name: example.name }
    });
  });
  return examples;
}
