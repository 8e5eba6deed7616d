/** Main-area widgets of the workbench's views. */
import { MainAreaWidget } from '@jupyterlab/apputils';
import { LabIcon } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';

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
