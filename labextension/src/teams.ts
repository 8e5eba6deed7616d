/**
 * Teams in the main area: the teams you are in (create one: you become its maintainer), and the
 * chosen team's members (maintainers add people, change their team role, remove them; anyone
 * may leave). A team is then added to a project as `team:NAME` in the project's settings.
 * Teams kept in sync with a JupyterHub group say so; the API decides what may change.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IPage, messageOf, requestAPI } from './api';
import { h } from './dom';

interface ITeam {
  name: string;
  display_name: string;
  description: string;
  source: string;
  member_count: number;
}

interface ITeamMember {
  username: string;
  display_name?: string;
  role: string;
}

function json(method: string, body?: unknown): RequestInit {
  return body === undefined ? { method } : { method, body: JSON.stringify(body) };
}

export class TeamsView extends Widget {
  constructor(trans: TranslationBundle, onChanged: () => void = () => undefined) {
    super();
    this._trans = trans;
    this._onChanged = onChanged;
    this.id = 'jp-workbench-teams';
    this.addClass('jp-WorkbenchSettings');
    this.title.label = trans.__('Teams');
    this.title.caption = trans.__('Your teams and their members');
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('Teams'));
    this._build();
  }

  /** Load your teams, and the chosen team's members. */
  async refresh(): Promise<void> {
    this.node.setAttribute('aria-busy', 'true');
    try {
      const page = await requestAPI<IPage<ITeam>>('teams?mine=true&limit=500');
      this._teams.replaceChildren(...page.items.map(t => this._teamItem(t)));
      if (!page.items.length) {
        this._teams.append(
          h('li', { class: 'jp-WorkbenchSettings-none' }, this._trans.__('No team yet: create one.'))
        );
      }
      if (this._chosen && !page.items.some(t => t.name === this._chosen)) {
        this._chosen = null;
      }
      await this._loadMembers();
    } catch (error) {
      this._say(this._teamsNote, messageOf(error), true);
    } finally {
      this.node.setAttribute('aria-busy', 'false');
      this.node.dataset.loaded = 'true';
    }
  }

  protected onAfterAttach(): void {
    if (this.node.dataset.loaded !== 'true') {
      void this.refresh();
    }
  }

  private async _act(note: HTMLElement, action: () => Promise<unknown>): Promise<void> {
    note.hidden = true;
    try {
      await action();
      this._onChanged();
      await this.refresh();
    } catch (error) {
      this._say(note, messageOf(error), true);
    }
  }

  private _say(note: HTMLElement, text: string, error: boolean): void {
    note.textContent = text;
    note.className = error ? 'jp-WorkbenchPanel-error' : 'jp-WorkbenchSettings-done';
    note.setAttribute('role', error ? 'alert' : 'status');
    note.hidden = false;
  }

  private _build(): void {
    const trans = this._trans;
    this._teams = h('ul', {
      class: 'jp-WorkbenchSettings-list',
      'aria-label': trans.__('Your teams')
    });
    this._teamsNote = h('div', { hidden: '' });
    this._newTeam = h('input', {
      class: 'jp-mod-styled',
      name: 'team',
      placeholder: trans.__('team name, e.g. ml-platform'),
      'aria-label': trans.__('New team name')
    }) as HTMLInputElement;
    const create = h(
      'form',
      { class: 'jp-WorkbenchSettings-add', 'aria-label': trans.__('New team') },
      this._newTeam,
      h('button', { class: 'jp-mod-styled', type: 'submit' }, trans.__('Create team'))
    );
    create.addEventListener('submit', event => {
      event.preventDefault();
      const name = this._newTeam.value.trim();
      void this._act(this._teamsNote, async () => {
        const team = await requestAPI<ITeam>('teams', json('POST', { name }));
        this._newTeam.value = '';
        this._chosen = team.name;
      });
    });

    this._membersTitle = h('h3', {}, trans.__('Members'));
    this._memberRows = h('tbody');
    this._membersNote = h('div', { hidden: '' });
    this._newMember = h('input', {
      class: 'jp-mod-styled',
      name: 'username',
      placeholder: trans.__('username'),
      'aria-label': trans.__('User to add to the team')
    }) as HTMLInputElement;
    this._newRole = this._roleSelect('member', trans.__('Team role of the new member'));
    const add = h(
      'form',
      { class: 'jp-WorkbenchSettings-add', 'aria-label': trans.__('Add a team member') },
      this._newMember,
      this._newRole,
      h('button', { class: 'jp-mod-styled', type: 'submit' }, trans.__('Add'))
    );
    add.addEventListener('submit', event => {
      event.preventDefault();
      const body = { username: this._newMember.value.trim(), role: this._newRole.value };
      void this._act(this._membersNote, async () => {
        await requestAPI(`${this._teamPath()}/members`, json('POST', body));
        this._newMember.value = '';
      });
    });
    this._members = h(
      'section',
      { class: 'jp-WorkbenchSettings-section' },
      this._membersTitle,
      h(
        'table',
        { class: 'jp-WorkbenchSettings-members' },
        h(
          'thead',
          {},
          h('tr', {}, h('th', {}, trans.__('Member')), h('th', {}, trans.__('Role')), h('th'))
        ),
        this._memberRows
      ),
      add,
      this._membersNote
    );
    this._members.hidden = true;

    const reload = h(
      'button',
      {
        class: 'jp-WorkbenchPanel-refresh jp-mod-styled',
        type: 'button',
        title: trans.__('Reload the teams'),
        'aria-label': trans.__('Reload the teams')
      },
      '⟳'
    );
    reload.addEventListener('click', () => void this.refresh());
    this.node.append(
      h('header', { class: 'jp-WorkbenchPanel-header' }, h('h2', {}, trans.__('Teams')), reload),
      h(
        'section',
        { class: 'jp-WorkbenchSettings-section' },
        h('h3', {}, trans.__('Your teams')),
        this._teams,
        create,
        this._teamsNote
      ),
      this._members
    );
  }

  private _teamPath(): string {
    return `teams/${encodeURIComponent(this._chosen ?? '')}`;
  }

  private _roleSelect(value: string, label: string): HTMLSelectElement {
    const select = h(
      'select',
      { class: 'jp-mod-styled', name: 'role', 'aria-label': label },
      h('option', { value: 'member' }, this._trans.__('member')),
      h('option', { value: 'maintainer' }, this._trans.__('maintainer'))
    ) as HTMLSelectElement;
    select.value = value;
    return select;
  }

  private _teamItem(team: ITeam): HTMLElement {
    const trans = this._trans;
    const chosen = team.name === this._chosen;
    const button = h(
      'button',
      {
        class: 'jp-mod-styled',
        type: 'button',
        'aria-pressed': String(chosen),
        'aria-label': trans.__('Show the members of team %1', team.name)
      },
      team.display_name || team.name
    );
    button.addEventListener('click', () => {
      this._chosen = team.name;
      void this.refresh();
    });
    return h(
      'li',
      { 'data-team': team.name, class: chosen ? 'jp-mod-selected' : '' },
      button,
      h(
        'span',
        { class: 'jp-WorkbenchPanel-role' },
        trans._n('%1 member', '%1 members', team.member_count),
        team.source === 'hub' ? ` · ${trans.__('JupyterHub group')}` : ''
      )
    );
  }

  private async _loadMembers(): Promise<void> {
    this._members.hidden = this._chosen === null;
    if (this._chosen === null) {
      return;
    }
    this._membersTitle.textContent = this._trans.__('Members of team %1', this._chosen);
    const page = await requestAPI<IPage<ITeamMember>>(`${this._teamPath()}/members?limit=500`);
    this._memberRows.replaceChildren(...page.items.map(m => this._memberRow(m)));
  }

  private _memberRow(member: ITeamMember): HTMLElement {
    const trans = this._trans;
    const path = `${this._teamPath()}/members/${encodeURIComponent(member.username)}`;
    const role = this._roleSelect(member.role, trans.__('Team role of %1', member.username));
    role.addEventListener('change', () => {
      void this._act(this._membersNote, () => requestAPI(path, json('PATCH', { role: role.value })));
    });
    const remove = h(
      'button',
      { class: 'jp-mod-styled', type: 'button', 'aria-label': trans.__('Remove %1', member.username) },
      trans.__('Remove')
    );
    remove.addEventListener('click', () => {
      void this._act(this._membersNote, () => requestAPI(path, json('DELETE')));
    });
    return h(
      'tr',
      { 'data-member': member.username },
      h('td', {}, member.display_name || member.username),
      h('td', {}, role),
      h('td', {}, remove)
    );
  }

  private _trans: TranslationBundle;
  private _onChanged: () => void;
  private _chosen: string | null = null;
  private _teams!: HTMLElement;
  private _teamsNote!: HTMLElement;
  private _newTeam!: HTMLInputElement;
  private _members!: HTMLElement;
  private _membersTitle!: HTMLElement;
  private _memberRows!: HTMLElement;
  private _membersNote!: HTMLElement;
  private _newMember!: HTMLInputElement;
  private _newRole!: HTMLSelectElement;
}
