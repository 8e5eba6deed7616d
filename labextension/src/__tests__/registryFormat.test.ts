import { describe, expect, it } from 'vitest';

import type { IAuditEvent, IModelVersion, INotification } from '../registryApi';
import {
  aliasesByVersion,
  canDecide,
  canRequest,
  cardFields,
  describeEvent,
  describeNotification,
  eventLink,
  fieldLabel,
  fieldText,
  lineageLabel,
  newestFirst,
  saveErrorMessage,
  timeAgo,
  toDate
} from '../registryFormat';

const trans = {
  __: (msg: string, ...args: any[]) =>
    msg.replace(/%(\d+)/g, (_, n: string) => String(args[Number(n) - 1]))
};

function event(action: string, more: Partial<IAuditEvent> = {}): IAuditEvent {
  return {
    id: 1,
    time: '2026-11-26T10:00:00+00:00',
    actor: 'bob',
    action,
    object_type: action.split('.')[0],
    object_id: 'churn',
    project: 'vision',
    summary: {},
    ...more
  };
}

describe('roles', () => {
  it('lets editors ask and admins decide', () => {
    expect([canRequest('viewer'), canRequest('editor'), canRequest('owner')]).toEqual([
      false,
      true,
      true
    ]);
    expect([canDecide('editor'), canDecide('admin'), canDecide('owner')]).toEqual([
      false,
      true,
      true
    ]);
    expect(canRequest(null)).toBe(false);
  });
});

describe('versions', () => {
  it('groups aliases by version and sorts versions newest first', () => {
    const map = aliasesByVersion({ production: '1', staging: '2', champion: '1' });
    expect(map.get('1')).toEqual(['champion', 'production']);
    expect(map.get('2')).toEqual(['staging']);
    const v = (version: string) => ({ version }) as IModelVersion;
    expect(newestFirst([v('2'), v('10'), v('1')]).map(x => x.version)).toEqual(['10', '2', '1']);
  });

  it('labels training datasets', () => {
    const d = { project: 'p', dataset: 'clicks', version: 3, direction: 'read' };
    expect(lineageLabel(d)).toBe('clicks@v3');
    expect(lineageLabel({ ...d, direction: 'write' })).toBe('→ clicks@v3');
  });

  it('reads MLflow times', () => {
    expect(toDate(0)?.toISOString()).toBe('1970-01-01T00:00:00.000Z');
    expect(toDate('1764151200000')?.getUTCFullYear()).toBe(2025);
    expect(toDate(null)).toBeNull();
    expect(toDate('nonsense')).toBeNull();
  });
});

describe('card fields', () => {
  it('shows strings as is and other values as JSON', () => {
    expect(fieldText('triage')).toBe('triage');
    expect(fieldText({ auc: 0.9 })).toBe('{"auc":0.9}');
    expect(fieldText(undefined)).toBe('');
    expect(fieldLabel('intended_use')).toBe('Intended use');
  });

  it('saves texts, drops empty ones, keeps JSON values JSON', () => {
    const original = { metrics: { auc: 0.9 }, limitations: 'none' };
    expect(
      cardFields(original, {
        intended_use: ' triage ',
        limitations: '',
        metrics: '{"auc": 0.95}',
        training_datasets: 'clicks@v3'
      })
    ).toEqual({ intended_use: 'triage', metrics: { auc: 0.95 }, training_datasets: 'clicks@v3' });
    expect(cardFields(original, { metrics: 'auc 0.95' })).toEqual({ metrics: 'auc 0.95' });
  });

  it('explains a conflicting save', () => {
    const text = saveErrorMessage(412, 'If-Match: the object changed', trans);
    expect(text).toContain('Someone saved the card while you were editing it');
    expect(text).toContain('If-Match: the object changed');
    expect(saveErrorMessage(403, 'no', trans)).toBe('no');
  });
});

describe('events', () => {
  it('describes what happened', () => {
    const summary = { version: '1', alias: 'production', request: 3 };
    expect(describeEvent(event('model.promotion_request', { summary }), trans)).toBe(
      'asked to promote churn v1 to production'
    );
    expect(describeEvent(event('model.promotion_approved', { summary }), trans)).toBe(
      'approved churn v1 as production'
    );
    expect(describeEvent(event('dataset.commit', { summary: { version: 2 } }), trans)).toBe(
      'committed churn v2'
    );
    // what a stock MLflow client changed, through the workbench's proxy
    const alias = { alias: 'production', version: '3' };
    expect(describeEvent(event('model.alias_set', { summary: alias }), trans)).toBe(
      'pointed churn@production at v3'
    );
    expect(describeEvent(event('model.version_create', { summary: { version: '3' } }), trans)).toBe(
      'registered churn v3'
    );
    const rename = { name: { from: 'models', to: 'churn' } };
    expect(describeEvent(event('experiment.rename', { summary: rename }), trans)).toBe(
      'renamed experiment models to churn'
    );
    const run = { object_id: '0123456789abcdef', summary: { experiment: 'base' } };
    expect(describeEvent(event('run.delete', run), trans)).toBe('deleted run 01234567 of base');
    expect(describeEvent(event('team.member_add', { object_id: 'ml' }), trans)).toBe(
      'member add team ml'
    );
  });

  it('links to the object where the lab has a view', () => {
    expect(eventLink(event('model.card'))).toEqual({ kind: 'model', project: 'vision', name: 'churn' });
    expect(eventLink(event('dataset.commit'))).toEqual({
      kind: 'dataset',
      project: 'vision',
      name: 'churn'
    });
    expect(eventLink(event('document.create', { object_id: 'abc' }))).toEqual({
      kind: 'document',
      id: 'abc'
    });
    expect(eventLink(event('dataset.delete'))).toBeNull();
    expect(eventLink(event('team.create', { project: null }))).toBeNull();
  });

  it('says how long ago', () => {
    const now = Date.parse('2026-11-26T12:00:00Z');
    expect(timeAgo('2026-11-26T11:59:30Z', now, trans)).toBe('just now');
    expect(timeAgo('2026-11-26T11:55:00Z', now, trans)).toBe('5 min ago');
    expect(timeAgo('2026-11-26T09:00:00Z', now, trans)).toBe('3 h ago');
    expect(timeAgo('2026-11-24T12:00:00Z', now, trans)).toBe('2 d ago');
    expect(timeAgo('2026-10-01T12:00:00Z', now, trans)).toBe('2026-10-01');
  });
});

describe('describeNotification', () => {
  const base = { id: 1, project: 'churn', project_name: 'Churn', message: '', created_at: '' };
  it('says who asks what, in which project', () => {
    const invitation: INotification = { ...base, kind: 'invitation', by: 'alice', role: 'editor' };
    expect(describeNotification(invitation, trans)).toBe('alice invited you to Churn as editor');
    const request: INotification = { ...base, kind: 'access_request', by: 'dave', role: 'viewer' };
    expect(describeNotification(request, trans)).toBe('dave asks for the viewer role on Churn');
    const promotion: INotification = {
      ...base,
      kind: 'promotion',
      by: null,
      model: 'clf',
      version: '3',
      alias: 'production'
    };
    expect(describeNotification(promotion, trans)).toBe(
      'someone asks to promote clf v3 to production in Churn'
    );
  });
});
