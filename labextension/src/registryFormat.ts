/**
 * Pure logic of the registry and activity views (no DOM, no JupyterLab imports: unit-tested as
 * is): who may do what, aliases per version, card fields, and audit events as sentences and links.
 */
import type { IAuditEvent, IModelVersion, INotification } from './registryApi';

/** The part of a translation bundle these helpers use (`trans.__` with %1, %2 ... arguments). */
export interface ITrans {
  __(msg: string, ...args: any[]): string;
}

/** Aliases that only an admin's approval moves (jupyter_workbench/core/registry.py). */
export const PROTECTED_ALIASES = ['production', 'prod', 'champion'];

/** The card's structured fields, in the order the editor shows them. */
export const CARD_FIELDS = [
  'intended_use',
  'limitations',
  'metrics',
  'training_datasets',
  'ethical_considerations'
];

const ROLES = ['viewer', 'editor', 'admin', 'owner'];

function rank(role: string | null | undefined): number {
  return ROLES.indexOf(String(role ?? '').toLowerCase()) + 1;
}

/** Editors and above ask for promotions and edit the card. */
export function canRequest(role: string | null | undefined): boolean {
  return rank(role) >= 2;
}

/** Admins and owners approve or reject (never their own request: the server says so). */
export function canDecide(role: string | null | undefined): boolean {
  return rank(role) >= 3;
}

/** version -> its aliases, sorted. */
export function aliasesByVersion(aliases: Record<string, string>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [alias, version] of Object.entries(aliases)) {
    out.set(String(version), [...(out.get(String(version)) ?? []), alias].sort());
  }
  return out;
}

/** Versions newest first (MLflow numbers them 1, 2, ...). */
export function newestFirst(versions: IModelVersion[]): IModelVersion[] {
  return [...versions].sort((a, b) => Number(b.version) - Number(a.version));
}

/** "churn@v3" for a dataset version a run read ("→ churn@v3" when it wrote it). */
export function lineageLabel(d: {
  project: string | null;
  dataset: string;
  version: number;
  direction: string;
}): string {
  const name = `${d.dataset}@v${d.version}`;
  return d.direction === 'write' ? `→ ${name}` : name;
}

/** A field's value as the editor's text: strings as is, anything else as JSON. */
export function fieldText(value: unknown): string {
  if (value === undefined || value === null) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The fields to save from the editor's texts: empty ones dropped; a field that held JSON
 * (not a string) keeps its type when its text still parses. */
export function cardFields(
  original: Record<string, unknown>,
  texts: Record<string, string>
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(texts)) {
    const text = raw.trim();
    if (!text) {
      continue;
    }
    const before = original[key];
    if (before !== undefined && before !== null && typeof before !== 'string') {
      try {
        out[key] = JSON.parse(text);
        continue;
      } catch {
        // edited into plain text: saved as text
      }
    }
    out[key] = text;
  }
  return out;
}

/** "Intended use" for "intended_use". */
export function fieldLabel(key: string): string {
  const words = key.replace(/_/g, ' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The message for a failed card save: a conflict (412/409) says what to do. */
export function saveErrorMessage(status: number, message: string, trans: ITrans): string {
  if (status === 412 || status === 409) {
    return trans.__(
      'Someone saved the card while you were editing it. Your text is kept here: copy it, press "Reload" to see their version, then apply your changes again. (%1)',
      message
    );
  }
  return message;
}

/** MLflow's creation time (ms since the epoch, or an ISO string) as a Date, or null. */
export function toDate(value: number | string | null | undefined): Date | null {
  if (value === null || value === undefined || value === '') {
    return null;
  }
  const n = typeof value === 'number' ? value : Number(value);
  const date = Number.isFinite(n) ? new Date(n) : new Date(String(value));
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "just now", "5 min ago", "3 h ago", "2 d ago", else the date. */
export function timeAgo(iso: string, now: number, trans: ITrans): string {
  const time = toDate(iso)?.getTime();
  if (time === undefined) {
    return iso;
  }
  const seconds = Math.max(0, Math.round((now - time) / 1000));
  if (seconds < 60) {
    return trans.__('just now');
  }
  if (seconds < 3600) {
    return trans.__('%1 min ago', Math.floor(seconds / 60));
  }
  if (seconds < 86400) {
    return trans.__('%1 h ago', Math.floor(seconds / 3600));
  }
  if (seconds < 7 * 86400) {
    return trans.__('%1 d ago', Math.floor(seconds / 86400));
  }
  return new Date(time).toISOString().slice(0, 10);
}

/** Where an event's object can be opened in the lab, or null. */
export type EventLink =
  | { kind: 'model'; project: string; name: string }
  | { kind: 'dataset'; project: string; name: string }
  | { kind: 'document'; id: string }
  | { kind: 'project'; project: string }
  | { kind: 'run'; project: string; experiment: string; experimentId: string; runId: string };

const GONE = new Set(['dataset.delete', 'model.delete', 'document.delete', 'project.purge']);

export function eventLink(event: IAuditEvent): EventLink | null {
  if (GONE.has(event.action)) {
    return null;
  }
  const project = event.project;
  switch (event.object_type) {
    case 'model':
      return project ? { kind: 'model', project, name: event.object_id } : null;
    case 'dataset':
      return project ? { kind: 'dataset', project, name: event.object_id } : null;
    case 'document':
      return { kind: 'document', id: event.object_id };
    case 'project':
      return project ? { kind: 'project', project } : null;
    default:
      return project ? { kind: 'project', project } : null;
  }
}

function str(value: unknown): string {
  return value === undefined || value === null ? '' : String(value);
}

/** What happened, as a sentence without the actor: "asked to promote churn v1 to production". */
export function describeEvent(event: IAuditEvent, trans: ITrans): string {
  const s = event.summary ?? {};
  const name = event.object_id;
  switch (event.action) {
    case 'model.promotion_request':
      return trans.__('asked to promote %1 v%2 to %3', name, str(s.version), str(s.alias));
    case 'model.promotion_approved':
      return trans.__('approved %1 v%2 as %3', name, str(s.version), str(s.alias));
    case 'model.promotion_rejected':
      return trans.__('rejected promoting %1 v%2 to %3', name, str(s.version), str(s.alias));
    case 'model.promotion_withdraw':
      return trans.__('withdrew a promotion request of %1', name);
    case 'model.create':
      return trans.__('registered model %1', name);
    case 'model.card':
      return trans.__('updated the card of model %1', name);
    case 'model.version_create':
      return trans.__('registered %1 v%2', name, str(s.version));
    case 'model.version_delete':
      return trans.__('deleted %1 v%2', name, str(s.version));
    case 'model.alias_set':
      return trans.__('pointed %1@%2 at v%3', name, str(s.alias), str(s.version));
    case 'model.alias_delete':
      return trans.__('removed the alias %1 of %2', str(s.alias), name);
    case 'experiment.rename': {
      const renamed = (s.name ?? {}) as { from?: unknown };
      return trans.__('renamed experiment %1 to %2', str(renamed.from), name);
    }
    case 'run.delete':
      return trans.__('deleted run %1 of %2', name.slice(0, 8), str(s.experiment));
    case 'dataset.create':
      return trans.__('created dataset %1', name);
    case 'dataset.commit':
      return s.version !== undefined
        ? trans.__('committed %1 v%2', name, str(s.version))
        : trans.__('committed a version of %1', name);
    case 'dataset.tag':
      return trans.__('tagged %1 %2', name, str(s.tag));
    case 'project.create':
      return trans.__('created project %1', event.project ?? name);
    case 'member.add':
      return trans.__('added %1 to %2', name, event.project ?? '');
    case 'experiment.create':
      return trans.__('created experiment %1', name);
    case 'document.create':
      return trans.__('created %1 %2', str(s.kind) || trans.__('document'), str(s.ref));
    default: {
      const [type, verb] = event.action.split('.', 2);
      return trans.__('%1 %2 %3', (verb ?? event.action).replace(/_/g, ' '), type, name).trim();
    }
  }
}

/** The actions a filter chip selects (prefixes ending in '*', as the audit API takes them). */
export const ACTIVITY_FILTERS: { value: string; label: string }[] = [
  { value: '', label: 'Everything' },
  { value: 'model.*', label: 'Models' },
  { value: 'dataset.*', label: 'Datasets' },
  { value: 'member.*', label: 'Members' },
  { value: 'document.*', label: 'Documents' }
];

/** What waits for the user, as a sentence: "alice invited you to Churn as editor". */
export function describeNotification(n: INotification, trans: ITrans): string {
  const who = n.by ?? trans.__('someone');
  switch (n.kind) {
    case 'invitation':
      return trans.__('%1 invited you to %2 as %3', who, n.project_name, str(n.role));
    case 'access_request':
      return trans.__('%1 asks for the %2 role on %3', who, str(n.role), n.project_name);
    case 'promotion':
      return trans.__(
        '%1 asks to promote %2 v%3 to %4 in %5',
        who,
        str(n.model),
        str(n.version),
        str(n.alias),
        n.project_name
      );
    default:
      return '';
  }
}
