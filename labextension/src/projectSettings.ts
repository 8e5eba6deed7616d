/**
 * A project's settings in the main area: its name, description and visibility, archiving, its
 * members (add a user or a team, change a role, remove), invitations (invite by username,
 * revoke) and access requests (approve, deny). Every control calls the REST API, which decides:
 * its refusals show next to the control in the API's words (a viewer sees the project but
 * changes nothing).
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { IMember, IMemberRemoved, IPage, IProject, messageOf, requestAPI } from './api';
import { h } from './dom';

const ROLES = ['viewer', 'editor', 'admin'];

interface IInvitation {
  id: number;
  username: string;
  role: string;
  message: string;
  status: string;
  invited_by: string | null;
}

interface IAccessRequest {
  id: number;
  username: string;
  role: string;
  message: string;
  status: string;
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A request's answer or its error, without throwing (each list shows its own). */
async function settle<T>(promise: Promise<T>): Promise<Settled<T>> {
  try {
    return { ok: true, value: await promise };
  } catch (error) {
    return { ok: false, error };
  }
}

function json(method: string, body?: unknown): RequestInit {
  return body === undefined ? { method } : { method, body: JSON.stringify(body) };
}

export class ProjectSettingsView extends Widget {
  constructor(
    readonly slug: string,
    trans: TranslationBundle,
    onChanged: () => void = () => undefined
  ) {
    super();
    this._trans = trans;
    this._onChanged = onChanged;
    this.addClass('jp-WorkbenchSettings');
    this.title.label = trans.__('%1 settings', slug);
    this.title.caption = trans.__('Project %1: details, members, invitations', slug);
    this.node.setAttribute('role', 'region');
    this.node.setAttribute('aria-label', trans.__('Settings of project %1', slug));
    this._build();
  }

  /** Load the project, its members, invitations and requests again. */
  async refresh(): Promise<void> {
    this.node.setAttribute('aria-busy', 'true');
    const base = `projects/${encodeURIComponent(this.slug)}`;
    try {
      const project = await requestAPI<IProject>(base);
      this._project = project;
      this._heading.textContent = project.name;
      this.title.label = this._trans.__('%1 settings', project.name);
      this._name.value = project.name;
      this._description.value = project.description ?? '';
      this._visibility.value = project.visibility;
      this._role.textContent = this._trans.__('your role: %1', project.my_role);
      this._archive.textContent = project.archived
        ? this._trans.__('Unarchive')
        : this._trans.__('Archive');
      this._archived.hidden = !project.archived;
      const members = await requestAPI<IPage<IMember>>(`${base}/members?limit=500`);
      this._memberRows.replaceChildren(...members.items.map(m => this._memberRow(m)));
      // invitations and requests are for the project's admins: others get the API's 403
      const [invitations, requests] = await Promise.all([
        settle(requestAPI<IPage<IInvitation>>(`${base}/invitations?status=pending`)),
        settle(requestAPI<IPage<IAccessRequest>>(`${base}/access-requests?status=pending`))
      ]);
      this._fill(this._invitations, invitations, i => this._invitationItem(i));
      this._fill(this._requests, requests, r => this._requestItem(r));
    } catch (error) {
      this._say(this._detailsNote, messageOf(error), true);
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

  private _fill<T>(
    list: HTMLElement,
    result: Settled<IPage<T>>,
    item: (value: T) => HTMLElement
  ): void {
    if (result.ok) {
      list.replaceChildren(...result.value.items.map(item));
      if (!result.value.items.length) {
        list.append(h('li', { class: 'jp-WorkbenchSettings-none' }, this._trans.__('None pending.')));
      }
    } else {
      list.replaceChildren(
        h('li', { class: 'jp-WorkbenchSettings-none' }, messageOf(result.error))
      );
    }
  }

  /** Run `action`; show its error (or `done`) in `note`, reload everything after a success. */
  private async _act(
    note: HTMLElement,
    action: () => Promise<unknown>,
    done: string | (() => string) = ''
  ): Promise<void> {
    note.hidden = true;
    try {
      await action();
      const said = typeof done === 'function' ? done() : done;
      if (said) {
        this._say(note, said, false);
      }
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
    const base = () => `projects/${encodeURIComponent(this.slug)}`;
    // details
    this._name = h('input', {
      class: 'jp-mod-styled',
      name: 'name',
      'aria-label': trans.__('Project name')
    }) as HTMLInputElement;
    this._description = h('textarea', {
      class: 'jp-mod-styled',
      name: 'description',
      rows: '3',
      'aria-label': trans.__('Description')
    }) as HTMLTextAreaElement;
    this._visibility = h(
      'select',
      { class: 'jp-mod-styled', name: 'visibility', 'aria-label': trans.__('Visibility') },
      h('option', { value: 'private' }, trans.__('private: members only')),
      h('option', { value: 'team' }, trans.__("team: its team's members see it")),
      h('option', { value: 'public' }, trans.__('public: every signed-in user sees it'))
    ) as HTMLSelectElement;
    this._detailsNote = h('div', { hidden: '' });
    this._role = h('span', { class: 'jp-WorkbenchPanel-role' });
    this._archived = h(
      'p',
      { class: 'jp-WorkbenchSettings-archived' },
      trans.__('Archived: read-only until it is unarchived.')
    );
    const details = h(
      'form',
      { class: 'jp-WorkbenchSettings-details', 'aria-label': trans.__('Project details') },
      h('label', {}, trans.__('Name'), this._name),
      h('label', {}, trans.__('Description'), this._description),
      h('label', {}, trans.__('Visibility'), this._visibility),
      h('button', { class: 'jp-mod-styled jp-mod-accept', type: 'submit' }, trans.__('Save')),
      this._detailsNote
    );
    details.addEventListener('submit', event => {
      event.preventDefault();
      const body = {
        name: this._name.value,
        description: this._description.value,
        visibility: this._visibility.value
      };
      void this._act(
        this._detailsNote,
        () => requestAPI(base(), json('PATCH', body)),
        trans.__('Saved.')
      );
    });
    this._archive = h('button', { class: 'jp-mod-styled', type: 'button' }, trans.__('Archive'));
    this._archive.addEventListener('click', () => {
      const verb = this._project?.archived ? 'unarchive' : 'archive';
      void this._act(this._detailsNote, () => requestAPI(`${base()}/${verb}`, json('POST')));
    });

    // members
    this._memberRows = h('tbody');
    this._membersNote = h('div', { hidden: '' });
    this._newMember = h('input', {
      class: 'jp-mod-styled',
      name: 'member',
      placeholder: trans.__('username, or team:name'),
      'aria-label': trans.__('User or team to add')
    }) as HTMLInputElement;
    this._newRole = this._roleSelect('viewer', trans.__('Role of the new member'));
    const add = h(
      'form',
      { class: 'jp-WorkbenchSettings-add', 'aria-label': trans.__('Add a member') },
      this._newMember,
      this._newRole,
      h('button', { class: 'jp-mod-styled', type: 'submit' }, trans.__('Add'))
    );
    add.addEventListener('submit', event => {
      event.preventDefault();
      const who = this._newMember.value.trim();
      const body = who.startsWith('team:')
        ? { team: who.slice(5), role: this._newRole.value }
        : { user: who, role: this._newRole.value };
      void this._act(this._membersNote, async () => {
        await requestAPI(`${base()}/members`, json('POST', body));
        this._newMember.value = '';
      });
    });

    // invitations
    this._invitations = h('ul', { class: 'jp-WorkbenchSettings-list' });
    this._inviteNote = h('div', { hidden: '' });
    this._invitee = h('input', {
      class: 'jp-mod-styled',
      name: 'invitee',
      placeholder: trans.__('username'),
      'aria-label': trans.__('Username to invite')
    }) as HTMLInputElement;
    this._inviteRole = this._roleSelect('viewer', trans.__('Role to offer'));
    this._inviteMessage = h('input', {
      class: 'jp-mod-styled',
      name: 'message',
      placeholder: trans.__('message (optional)'),
      'aria-label': trans.__('Invitation message')
    }) as HTMLInputElement;
    const invite = h(
      'form',
      { class: 'jp-WorkbenchSettings-add', 'aria-label': trans.__('Invite someone') },
      this._invitee,
      this._inviteRole,
      this._inviteMessage,
      h('button', { class: 'jp-mod-styled', type: 'submit' }, trans.__('Invite'))
    );
    invite.addEventListener('submit', event => {
      event.preventDefault();
      const body = {
        username: this._invitee.value.trim(),
        role: this._inviteRole.value,
        message: this._inviteMessage.value
      };
      void this._act(this._inviteNote, async () => {
        await requestAPI(`${base()}/invitations`, json('POST', body));
        this._invitee.value = '';
        this._inviteMessage.value = '';
      });
    });

    // access requests
    this._requests = h('ul', { class: 'jp-WorkbenchSettings-list' });
    this._requestsNote = h('div', { hidden: '' });

    const reload = h(
      'button',
      {
        class: 'jp-WorkbenchPanel-refresh jp-mod-styled',
        type: 'button',
        title: trans.__('Reload the project settings'),
        'aria-label': trans.__('Reload the project settings')
      },
      '⟳'
    );
    reload.addEventListener('click', () => void this.refresh());
    this._heading = h('h2', {}, this.slug);
    const section = (title: string, ...children: Node[]) =>
      h('section', { class: 'jp-WorkbenchSettings-section' }, h('h3', {}, title), ...children);
    this.node.append(
      h(
        'header',
        { class: 'jp-WorkbenchPanel-header' },
        this._heading,
        h('span', { class: 'jp-WorkbenchSettings-tools' }, this._role, this._archive, reload)
      ),
      this._archived,
      section(trans.__('Details'), details),
      section(
        trans.__('Members'),
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
      ),
      section(trans.__('Invitations'), this._invitations, invite, this._inviteNote),
      section(trans.__('Access requests'), this._requests, this._requestsNote)
    );
  }

  private _roleSelect(value: string, label: string, owner = false): HTMLSelectElement {
    const roles = owner ? [...ROLES, 'owner'] : ROLES;
    const select = h(
      'select',
      { class: 'jp-mod-styled', name: 'role', 'aria-label': label },
      ...roles.map(r => h('option', { value: r }, this._trans.__(r)))
    ) as HTMLSelectElement;
    select.value = value;
    return select;
  }

  private _memberRow(member: IMember): HTMLElement {
    const trans = this._trans;
    const base = `projects/${encodeURIComponent(this.slug)}/members/${encodeURIComponent(member.member)}`;
    const label =
      member.kind === 'team'
        ? trans.__('team %1', member.team?.display_name || member.team?.name || member.member)
        : member.user?.display_name || member.member;
    const owner = member.role === 'owner';
    const role = this._roleSelect(member.role, trans.__('Role of %1', label), owner);
    role.disabled = owner; // ownership moves by a transfer, not here
    role.addEventListener('change', () => {
      void this._act(this._membersNote, () =>
        requestAPI(base, json('PATCH', { role: role.value }))
      );
    });
    const remove = h(
      'button',
      { class: 'jp-mod-styled', type: 'button', 'aria-label': trans.__('Remove %1', label) },
      trans.__('Remove')
    ) as HTMLButtonElement;
    remove.hidden = owner;
    remove.addEventListener('click', () => {
      let still = '';
      void this._act(
        this._membersNote,
        async () => {
          const removed = await requestAPI<IMemberRemoved>(base, json('DELETE'));
          if (removed.remaining_role) {
            still = trans.__(
              '%1 still has the %2 role through team %3.',
              label,
              trans.__(removed.remaining_role),
              removed.remaining_teams.map(t => `${t.team} (${trans.__(t.role)})`).join(', ')
            );
          }
        },
        () => still
      );
    });
    return h(
      'tr',
      { 'data-member': member.member },
      h('td', {}, label),
      h('td', {}, role),
      h('td', {}, remove)
    );
  }

  private _invitationItem(invitation: IInvitation): HTMLElement {
    const trans = this._trans;
    const revoke = h(
      'button',
      {
        class: 'jp-mod-styled',
        type: 'button',
        'aria-label': trans.__('Revoke the invitation of %1', invitation.username)
      },
      trans.__('Revoke')
    );
    revoke.addEventListener('click', () => {
      const path = `projects/${encodeURIComponent(this.slug)}/invitations/${invitation.id}`;
      void this._act(this._inviteNote, () => requestAPI(path, json('DELETE')));
    });
    return h(
      'li',
      { 'data-invitation': String(invitation.id), 'data-username': invitation.username },
      h(
        'span',
        {},
        trans.__('%1 as %2', invitation.username, invitation.role),
        invitation.invited_by ? ` · ${trans.__('by %1', invitation.invited_by)}` : ''
      ),
      revoke
    );
  }

  private _requestItem(request: IAccessRequest): HTMLElement {
    const trans = this._trans;
    const path = `projects/${encodeURIComponent(this.slug)}/access-requests/${request.id}`;
    const answer = (label: string, verb: string) => {
      const button = h(
        'button',
        {
          class: 'jp-mod-styled',
          type: 'button',
          'aria-label': `${label}: ${request.username}`
        },
        label
      );
      button.addEventListener('click', () => {
        void this._act(this._requestsNote, () => requestAPI(`${path}/${verb}`, json('POST')));
      });
      return button;
    };
    return h(
      'li',
      { 'data-request': String(request.id), 'data-username': request.username },
      h(
        'span',
        {},
        trans.__('%1 asks for %2', request.username, request.role),
        request.message ? ` · “${request.message}”` : ''
      ),
      answer(trans.__('Approve'), 'approve'),
      answer(trans.__('Deny'), 'deny')
    );
  }

  private _trans: TranslationBundle;
  private _onChanged: () => void;
  private _project: IProject | null = null;
  private _heading!: HTMLElement;
  private _name!: HTMLInputElement;
  private _description!: HTMLTextAreaElement;
  private _visibility!: HTMLSelectElement;
  private _detailsNote!: HTMLElement;
  private _role!: HTMLElement;
  private _archive!: HTMLElement;
  private _archived!: HTMLElement;
  private _memberRows!: HTMLElement;
  private _membersNote!: HTMLElement;
  private _newMember!: HTMLInputElement;
  private _newRole!: HTMLSelectElement;
  private _invitations!: HTMLElement;
  private _inviteNote!: HTMLElement;
  private _invitee!: HTMLInputElement;
  private _inviteRole!: HTMLSelectElement;
  private _inviteMessage!: HTMLInputElement;
  private _requests!: HTMLElement;
  private _requestsNote!: HTMLElement;
}
