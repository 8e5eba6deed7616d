/**
 * Recent activity in the main area: what happens in the user's projects (the activity feed:
 * audit events of every project they belong to, and their own actions; who, what, when),
 * each with a link to its object where the lab has a view for it; refreshed on the settings'
 * interval while visible, and on demand.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { messageOf, requestAPI } from './api';
import { answerNotification, IAuditEvent, INotification, listNotifications } from './registryApi';
import {
  ACTIVITY_FILTERS,
  describeEvent,
  describeNotification,
  EventLink,
  eventLink,
  timeAgo
} from './registryFormat';
import { h } from './dom';

const PAGE = 50;

export class ActivityView extends Widget {
  constructor(
    trans: TranslationBundle,
    open: (link: EventLink) => void = () => undefined,
    onAnswered: () => void = () => undefined
  ) {
    super();
    this._trans = trans;
    this._open = open;
    this._onAnswered = onAnswered;
    this.addClass('jp-WorkbenchActivity');
    this.title.label = trans.__('Activity');
    this.title.caption = trans.__('Recent activity in your projects');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('Recent activity'));
    this._build();
  }

  /** Reload every `seconds` while visible (0: only on demand). */
  configure(seconds: number): void {
    window.clearInterval(this._timer);
    this._timer = undefined;
    if (seconds > 0) {
      this._timer = window.setInterval(() => {
        if (this.isVisible) {
          void this.refresh();
        }
      }, seconds * 1000);
    }
  }

  /** Load what waits for the user and the newest events again. */
  async refresh(): Promise<void> {
    await Promise.all([this._loadWaiting(), this._load(false)]);
  }

  dispose(): void {
    window.clearInterval(this._timer);
    super.dispose();
  }

  protected onAfterAttach(): void {
    if (this.node.dataset.loaded !== 'true') {
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
        title: trans.__('Reload the activity'),
        'aria-label': trans.__('Reload the activity')
      },
      '⟳'
    );
    refresh.addEventListener('click', () => void this.refresh());
    this._filter = h(
      'select',
      { class: 'jp-mod-styled', name: 'action', 'aria-label': trans.__('Show') },
      ...ACTIVITY_FILTERS.map(f => h('option', { value: f.value }, trans.__(f.label)))
    ) as HTMLSelectElement;
    this._filter.addEventListener('change', () => void this.refresh());
    this._error = h('div', { class: 'jp-WorkbenchPanel-error', role: 'alert' });
    this._error.hidden = true;
    this._empty = h(
      'p',
      { class: 'jp-WorkbenchPanel-empty' },
      trans.__(
        'Nothing yet. Commits, registered models, promotion requests and membership changes of your projects show here as they happen.'
      )
    );
    this._empty.hidden = true;
    this._list = h('ol', {
      class: 'jp-WorkbenchActivity-events',
      'aria-label': trans.__('Events, newest first')
    });
    this._more = h('button', { class: 'jp-mod-styled', type: 'button' }, trans.__('Show older'));
    this._more.hidden = true;
    this._more.addEventListener('click', () => void this._load(true));
    this._updated = h('span', { class: 'jp-WorkbenchPanel-role', 'aria-live': 'polite' });
    this._waitingList = h('ul', { class: 'jp-WorkbenchActivity-waitingList' });
    this._waitingError = h('div', { class: 'jp-WorkbenchPanel-error', role: 'alert' });
    this._waitingError.hidden = true;
    this._waiting = h(
      'section',
      { class: 'jp-WorkbenchActivity-waiting', 'aria-label': trans.__('Waiting for you') },
      h('h3', {}, trans.__('Waiting for you')),
      this._waitingError,
      this._waitingList
    );
    this._waiting.hidden = true;
    this.node.append(
      h(
        'header',
        { class: 'jp-WorkbenchPanel-header' },
        h('h2', {}, trans.__('Activity')),
        h('div', { class: 'jp-WorkbenchActivity-tools' }, this._updated, this._filter, refresh)
      ),
      h(
        'p',
        { class: 'jp-WorkbenchActivity-scope' },
        trans.__('What happens in the projects you belong to, and your own actions.')
      ),
      this._waiting,
      this._error,
      this._empty,
      this._list,
      this._more
    );
  }

  private async _load(more: boolean): Promise<void> {
    this._error.hidden = true;
    this.node.setAttribute('aria-busy', 'true');
    const action = this._filter.value;
    const query = [`limit=${PAGE}`, 'sort=-time'];
    if (action) {
      query.push(`action=${encodeURIComponent(action)}`);
    }
    if (more && this._cursor) {
      query.push(`cursor=${encodeURIComponent(this._cursor)}`);
    }
    try {
      const page = await requestAPI<{ items: IAuditEvent[]; next_cursor: string | null }>(
        `activity?${query.join('&')}`
      );
      if (action !== this._filter.value) {
        return;
      }
      this._cursor = page.next_cursor;
      const now = Date.now();
      const items = page.items.map(e => this._item(e, now));
      if (more) {
        this._list.append(...items);
      } else {
        this._list.replaceChildren(...items);
      }
      this._list.dataset.action = action; // what the list shows (for tests and styles)
      this._empty.hidden = this._list.childElementCount > 0;
      this._more.hidden = !page.next_cursor;
      this._updated.textContent = this._trans.__('updated %1', new Date(now).toLocaleTimeString());
    } catch (error) {
      this._error.textContent = messageOf(error);
      this._error.hidden = false;
    } finally {
      this.node.setAttribute('aria-busy', 'false');
      this.node.dataset.loaded = 'true';
    }
  }

  private async _loadWaiting(): Promise<void> {
    this._waitingError.hidden = true;
    try {
      const items = await listNotifications();
      const now = Date.now();
      this._waitingList.replaceChildren(...items.map(n => this._waitingItem(n, now)));
      this._waiting.hidden = items.length === 0;
      this._waiting.dataset.count = String(items.length);
    } catch (error) {
      this._waitingError.textContent = messageOf(error);
      this._waitingError.hidden = false;
      this._waiting.hidden = false;
    }
  }

  /** One notification: what it is, and the buttons that answer it. */
  private _waitingItem(n: INotification, now: number): HTMLElement {
    const trans = this._trans;
    const what = describeNotification(n, trans);
    const buttons: HTMLElement[] = [];
    const answer = (label: string, value: 'accept' | 'decline' | 'approve' | 'deny') => {
      const button = h(
        'button',
        { class: 'jp-mod-styled', type: 'button', 'aria-label': `${label}: ${what}` },
        label
      ) as HTMLButtonElement;
      button.addEventListener('click', async () => {
        buttons.forEach(b => ((b as HTMLButtonElement).disabled = true));
        this._waitingError.hidden = true;
        try {
          await answerNotification(n, value);
          this._onAnswered();
          await this.refresh();
        } catch (error) {
          this._waitingError.textContent = messageOf(error);
          this._waitingError.hidden = false;
          buttons.forEach(b => ((b as HTMLButtonElement).disabled = false));
        }
      });
      buttons.push(button);
    };
    let note: HTMLElement = n.message
      ? h('q', { class: 'jp-WorkbenchActivity-message' }, n.message)
      : h('span', {});
    if (n.kind === 'invitation') {
      if (n.acceptable === false) {
        // accepting would be refused (its inviter may no longer grant the role): say why, in
        // the message's place
        note = h('span', { class: 'jp-WorkbenchActivity-reason', role: 'note' }, n.reason ?? '');
      } else {
        answer(trans.__('Accept'), 'accept');
      }
      answer(trans.__('Decline'), 'decline');
    } else if (n.kind === 'access_request') {
      answer(trans.__('Approve'), 'approve');
      answer(trans.__('Deny'), 'deny');
    } else if (n.model) {
      const open = h('button', { class: 'jp-mod-styled', type: 'button' }, trans.__('Open model'));
      const link: EventLink = { kind: 'model', project: n.project, name: n.model };
      open.addEventListener('click', () => this._open(link));
      buttons.push(open);
    }
    return h(
      'li',
      { class: 'jp-WorkbenchActivity-notification', 'data-kind': n.kind, 'data-id': String(n.id) },
      h('span', { class: 'jp-WorkbenchActivity-what' }, what),
      note,
      h(
        'time',
        { class: 'jp-WorkbenchPanel-role', datetime: n.created_at },
        timeAgo(n.created_at, now, trans)
      ),
      h('span', { class: 'jp-WorkbenchActivity-answers' }, ...buttons)
    );
  }

  private _item(event: IAuditEvent, now: number): HTMLElement {
    const trans = this._trans;
    const what = describeEvent(event, trans);
    const link = eventLink(event);
    const target = link
      ? h(
          'button',
          {
            class: 'jp-WorkbenchModel-link jp-WorkbenchActivity-what',
            type: 'button',
            title: trans.__('Open')
          },
          what
        )
      : h('span', { class: 'jp-WorkbenchActivity-what' }, what);
    if (link) {
      target.addEventListener('click', () => this._open(link));
    }
    return h(
      'li',
      {
        class: 'jp-WorkbenchActivity-event',
        'data-action': event.action,
        'data-event': String(event.id)
      },
      h('strong', { class: 'jp-WorkbenchActivity-actor' }, event.actor),
      target,
      event.project
        ? h('span', { class: 'jp-WorkbenchActivity-project' }, event.project)
        : h('span', {}),
      h(
        'time',
        { class: 'jp-WorkbenchPanel-role', datetime: event.time, title: new Date(event.time).toLocaleString() },
        timeAgo(event.time, now, trans)
      )
    );
  }

  private _trans: TranslationBundle;
  private _open: (link: EventLink) => void;
  private _onAnswered: () => void;
  private _timer: number | undefined;
  private _cursor: string | null = null;
  private _filter!: HTMLSelectElement;
  private _error!: HTMLElement;
  private _empty!: HTMLElement;
  private _list!: HTMLElement;
  private _more!: HTMLElement;
  private _updated!: HTMLElement;
  private _waiting!: HTMLElement;
  private _waitingList!: HTMLElement;
  private _waitingError!: HTMLElement;
}
