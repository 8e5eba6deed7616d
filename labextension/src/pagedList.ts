/**
 * A sidebar list read a page at a time (the project's datasets, experiments, models): the first
 * page when a project is shown, the next ones with its "Show more" button.
 */
import { IPage, messageOf } from './api';
import { h } from './dom';
import { listKeyTarget } from './keys';

/** Items a page asks for; a refresh asks for as many as are shown, up to MAX_PAGE. */
export const PAGE = 50;
export const MAX_PAGE = 500;

export interface IPagedListOptions<T> {
  /** Class and accessible name of the list (`ul`). */
  listClass: string;
  listLabel: string;
  /** Class of the paragraph shown when the list is empty, and its text for a key. */
  emptyClass: string;
  emptyText: (key: string) => string;
  /** Class and label of the "Show more" button. */
  moreClass: string;
  moreLabel: string;
  /** Items of `key` after `cursor` (null: from the first). */
  fetch: (key: string, cursor: string | null, limit: number) => Promise<IPage<T>>;
  /** The list item of one item. */
  render: (key: string, item: T) => HTMLElement;
}

export class PagedList<T> {
  constructor(options: IPagedListOptions<T>) {
    this._options = options;
    this.error = h('div', { class: 'jp-WorkbenchPanel-error', role: 'alert' });
    this.error.hidden = true;
    this.empty = h('p', { class: options.emptyClass });
    this.empty.hidden = true;
    this.list = h('ul', { class: options.listClass, 'aria-label': options.listLabel });
    this.list.addEventListener('keydown', event => {
      const items = Array.from(this.list.children) as HTMLElement[];
      const index = items.indexOf(document.activeElement as HTMLElement);
      const next = listKeyTarget(event.key, index, items.length);
      if (next !== null) {
        event.preventDefault();
        items[next].focus();
      }
    });
    this.more = h(
      'button',
      { class: `jp-mod-styled jp-WorkbenchPanel-more ${options.moreClass}`, type: 'button' },
      options.moreLabel
    ) as HTMLButtonElement;
    this.more.hidden = true;
    this.more.addEventListener('click', () => this._showMore());
  }

  readonly error: HTMLElement;
  readonly empty: HTMLElement;
  readonly list: HTMLElement;
  readonly more: HTMLButtonElement;

  /** The nodes to place in a section, in order. */
  get nodes(): HTMLElement[] {
    return [this.error, this.empty, this.list, this.more];
  }

  /**
   * Show the items of `key` (null: nothing). Loading the same key again (a refresh) keeps as
   * many items as were shown, so pages added with "Show more" stay; a later load makes an
   * earlier one's answer stale, so no page is added twice or to another key's list.
   */
  async load(key: string | null): Promise<void> {
    const shown = key !== null && key === this._key ? this.list.childElementCount : 0;
    this._key = key;
    if (key === null) {
      ++this._generation;
      this.list.replaceChildren();
      this.error.hidden = this.empty.hidden = this.more.hidden = true;
      return;
    }
    await this._page(key, null, Math.min(Math.max(shown, PAGE), MAX_PAGE));
  }

  private async _page(key: string, cursor: string | null, limit = PAGE): Promise<void> {
    const generation = ++this._generation;
    this.error.hidden = true;
    this.more.disabled = true;
    try {
      const page = await this._options.fetch(key, cursor, limit);
      if (generation !== this._generation) {
        return;
      }
      const items = page.items.map(item => this._options.render(key, item));
      if (cursor) {
        this.list.append(...items);
      } else {
        this.list.replaceChildren(...items);
      }
      this._cursor = page.next_cursor;
      this.more.hidden = page.next_cursor === null;
      this.empty.hidden = this.list.childElementCount > 0;
      this.empty.textContent = this._options.emptyText(key);
    } catch (error) {
      if (generation !== this._generation) {
        return;
      }
      if (!cursor) {
        this.list.replaceChildren();
        this.more.hidden = true;
      }
      this.empty.hidden = true;
      this.error.textContent = messageOf(error);
      this.error.hidden = false;
    } finally {
      if (generation === this._generation) {
        this.more.disabled = false;
      }
    }
  }

  private _showMore(): void {
    if (this._key !== null && this._cursor !== null && !this.more.disabled) {
      void this._page(this._key, this._cursor);
    }
  }

  private _options: IPagedListOptions<T>;
  private _key: string | null = null;
  private _cursor: string | null = null;
  private _generation = 0;
}
