/** Main-area widgets of the workbench's views, and the one place that opens them. */
import { ILabStatus, JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget, showErrorMessage } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { DockLayout, Widget } from '@lumino/widgets';

/** `view` in a closable main-area tab with id `id`, its title and icon; the view keeps its own
 * ARIA label (MainAreaWidget gives its content the generic "main area content"). */
export function mainArea<T extends Widget>(view: T, id: string, icon: LabIcon): MainAreaWidget<T> {
  const label = view.node.getAttribute('aria-label');
  const widget = new MainAreaWidget<T>({ content: view });
  if (label) {
    view.node.setAttribute('aria-label', label);
  }
  widget.id = id;
  widget.title.label = view.title.label;
  widget.title.caption = view.title.caption;
  widget.title.icon = icon;
  widget.title.closable = true;
  return widget;
}

/** The class on `document.body` while a view's code and first data load (a progress cursor). */
export const LOADING_CLASS = 'jp-WorkbenchMod-loading';

/**
 * Opens the workbench's main-area views, one tab per key: asking again for an open view shows it;
 * asking again while it is still loading (its code is a separate chunk, fetched on first use)
 * waits for that same load instead of making a second tab. While a view loads, JupyterLab shows
 * itself busy and the pointer is a progress cursor; a failure is one error dialog.
 */
export class MainAreaViews {
  constructor(app: JupyterFrontEnd, status: ILabStatus | null) {
    this._app = app;
    this._status = status;
  }

  /** The open view under `key`, if any. */
  get(key: string): MainAreaWidget | undefined {
    const widget = this._open.get(key);
    return widget && !widget.isDisposed ? widget : undefined;
  }

  /**
   * Show the view under `key` (`null`: always a new one), making it with `make` when it is not
   * open; `failure` titles the error dialog. Resolves to the widget shown, or null on failure.
   */
  async show<T extends Widget>(
    key: string | null,
    make: () => Promise<MainAreaWidget<T>>,
    failure: string,
    mode: DockLayout.InsertMode = 'tab-after'
  ): Promise<MainAreaWidget<T> | null> {
    const existing = key === null ? undefined : this.get(key);
    if (existing) {
      this._app.shell.activateById(existing.id);
      return existing as MainAreaWidget<T>;
    }
    const loading = key === null ? undefined : this._pending.get(key);
    if (loading) {
      return loading as Promise<MainAreaWidget<T> | null>;
    }
    const made = this._make(key, make, failure, mode);
    if (key !== null) {
      this._pending.set(key, made);
      void made.finally(() => this._pending.delete(key));
    }
    return made;
  }

  private async _make<T extends Widget>(
    key: string | null,
    make: () => Promise<MainAreaWidget<T>>,
    failure: string,
    mode: DockLayout.InsertMode
  ): Promise<MainAreaWidget<T> | null> {
    const busy = this._status?.setBusy();
    this._loading += 1;
    document.body.classList.add(LOADING_CLASS);
    let widget: MainAreaWidget<T>;
    try {
      widget = await make();
    } catch (error) {
      this._done(busy);
      await showErrorMessage(failure, (error as Error).message);
      return null;
    }
    this._done(busy);
    if (key !== null) {
      this._open.set(key, widget);
      widget.disposed.connect(() => {
        if (this._open.get(key) === widget) {
          this._open.delete(key);
        }
      });
    }
    this._app.shell.add(widget, 'main', { mode });
    this._app.shell.activateById(widget.id);
    return widget;
  }

  private _done(busy: { dispose(): void } | undefined): void {
    busy?.dispose();
    this._loading -= 1;
    if (this._loading === 0) {
      document.body.classList.remove(LOADING_CLASS);
    }
  }

  private _app: JupyterFrontEnd;
  private _status: ILabStatus | null;
  private _open = new Map<string, MainAreaWidget>();
  private _pending = new Map<string, Promise<MainAreaWidget | null>>();
  private _loading = 0;
}
