/**
 * What waits for the user (GET me/notifications) in JupyterLab's notification centre (the bell
 * in the status bar): each item once, kept in the centre without a toast, with "Show" opening
 * the activity view where it is answered; an item answered elsewhere leaves the centre.
 */
import { Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';

import { listNotifications } from './registryApi';
import { describeNotification } from './registryFormat';

export class NotificationFeed {
  constructor(trans: TranslationBundle, showActivity: () => void) {
    this._trans = trans;
    this._show = showActivity;
  }

  /** Poll every `seconds` (0: only when `poll` is called). */
  configure(seconds: number): void {
    window.clearInterval(this._timer);
    this._timer = seconds > 0 ? window.setInterval(() => void this.poll(), seconds * 1000) : undefined;
  }

  /** Fetch the list once; a failed fetch is left to the activity view, which shows its error. */
  async poll(): Promise<void> {
    let items;
    try {
      items = await listNotifications();
    } catch {
      return;
    }
    const current = new Set<string>();
    for (const item of items) {
      const key = `${item.kind}:${item.id}`;
      current.add(key);
      if (this._posted.has(key)) {
        continue;
      }
      const id = Notification.emit(describeNotification(item, this._trans), 'info', {
        autoClose: 0,
        actions: [
          {
            label: this._trans.__('Show'),
            caption: this._trans.__('Open the activity view to answer it'),
            callback: () => this._show()
          }
        ]
      });
      this._posted.set(key, id);
    }
    for (const [key, id] of this._posted) {
      if (!current.has(key)) {
        Notification.dismiss(id);
        this._posted.delete(key);
      }
    }
  }

  dispose(): void {
    window.clearInterval(this._timer);
  }

  private _trans: TranslationBundle;
  private _show: () => void;
  private _timer: number | undefined;
  private _posted = new Map<string, string>();
}
