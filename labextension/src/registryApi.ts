/**
 * The REST calls of the registry and activity views: registered models, versions with lineage,
 * promotion requests, model cards, audit events, and dataset uploads (see docs/tracking.md and
 * docs/datasets.md for the endpoints).
 */
import { requestAPI, WorkbenchAPIError } from './api';

export interface IModelSummary {
  name: string;
  description: string;
  latest_versions: string[];
  /** alias -> version */
  aliases: Record<string, string>;
  /** recorded by the workbench, but MLflow no longer has it */
  missing?: boolean;
}

/** A dataset version a run read or wrote (training data of a model version). */
export interface ILineageDataset {
  project: string | null;
  dataset: string;
  version: number;
  consumer: string;
  direction: 'read' | 'write';
  recorded_by: string | null;
  time: string;
}

export interface IModelVersion {
  version: string;
  run_id: string | null;
  source: string | null;
  status: string | null;
  /** MLflow's creation time, milliseconds since the epoch */
  created: number | string | null;
  datasets: ILineageDataset[];
  /** the run's experiment, where you may read it (the model view opens the run there) */
  experiment?: { project: string; name: string; mlflow_experiment_id: string } | null;
}

export interface IPromotion {
  id: number;
  model: string;
  version: string;
  alias: string;
  note?: string;
  status: 'pending' | 'approved' | 'rejected' | 'withdrawn';
  requested_by?: string | null;
  decided_by?: string | null;
  decision_note?: string;
  created_at?: string;
  decided_at?: string | null;
}

export interface IModelCard {
  model: string;
  revision: number;
  markdown: string;
  fields: Record<string, unknown>;
  author?: string | null;
  updated_at?: string | null;
  etag?: string | null;
}

export interface IModel {
  name: string;
  description: string;
  aliases: Record<string, string>;
  versions: IModelVersion[];
  card: IModelCard;
  pending_promotions: IPromotion[];
}

/** One audit event (GET audit). */
export interface IAuditEvent {
  id: number;
  time: string;
  actor: string;
  action: string;
  object_type: string;
  object_id: string;
  project: string | null;
  summary: Record<string, unknown>;
}

/** Something waiting for the user (GET me/notifications). */
export interface INotification {
  kind: 'invitation' | 'access_request' | 'promotion';
  id: number;
  project: string;
  project_name: string;
  by: string | null;
  message: string;
  created_at: string;
  role?: string;
  /** (Invitations.) false: it can no longer be accepted (`reason` says why); decline it. */
  acceptable?: boolean;
  reason?: string | null;
  model?: string;
  version?: string;
  alias?: string;
}

export async function listNotifications(): Promise<INotification[]> {
  return (await requestAPI<{ items: INotification[] }>('me/notifications')).items;
}

/** Answer a notification: accept/decline an invitation, approve/deny an access request. */
export async function answerNotification(
  n: INotification,
  answer: 'accept' | 'decline' | 'approve' | 'deny'
): Promise<void> {
  const kind = n.kind === 'invitation' ? 'invitations' : 'access-requests';
  await requestAPI(`projects/${encodeURIComponent(n.project)}/${kind}/${n.id}/${answer}`, {
    method: 'POST'
  });
}

function modelPath(slug: string, name: string): string {
  return `projects/${encodeURIComponent(slug)}/models/${encodeURIComponent(name)}`;
}

/** A page of a project's registered models, by name (`cursor`: the previous page's next_cursor). */
export function listModels(
  slug: string,
  cursor: string | null = null,
  limit = 50
): Promise<{ items: IModelSummary[]; next_cursor: string | null }> {
  const query = [`limit=${limit}`, ...(cursor ? [`cursor=${encodeURIComponent(cursor)}`] : [])];
  return requestAPI<{ items: IModelSummary[]; next_cursor: string | null }>(
    `projects/${encodeURIComponent(slug)}/models?${query.join('&')}`
  );
}

export function getModel(slug: string, name: string): Promise<IModel> {
  return requestAPI<IModel>(modelPath(slug, name));
}

export function registerVersion(
  slug: string,
  name: string,
  runId: string
): Promise<{ name: string; version: string }> {
  return requestAPI(`${modelPath(slug, name)}/versions`, {
    method: 'POST',
    body: JSON.stringify({ run_id: runId })
  });
}

export function listPromotions(slug: string, name: string): Promise<{ items: IPromotion[] }> {
  return requestAPI<{ items: IPromotion[] }>(`${modelPath(slug, name)}/promotions`);
}

export function requestPromotion(
  slug: string,
  name: string,
  version: string,
  alias: string,
  note = ''
): Promise<IPromotion> {
  return requestAPI<IPromotion>(`${modelPath(slug, name)}/promotions`, {
    method: 'POST',
    body: JSON.stringify({ version, alias, note })
  });
}

export function decidePromotion(
  slug: string,
  name: string,
  id: number,
  approve: boolean,
  note = ''
): Promise<IPromotion> {
  const verb = approve ? 'approve' : 'reject';
  return requestAPI<IPromotion>(`${modelPath(slug, name)}/promotions/${id}/${verb}`, {
    method: 'POST',
    body: JSON.stringify({ note })
  });
}

export function getCard(slug: string, name: string): Promise<IModelCard> {
  return requestAPI<IModelCard>(`${modelPath(slug, name)}/card`);
}

/** Save a card revision; `etag` (the card's as read) makes a concurrent change a 412. */
export function saveCard(
  slug: string,
  name: string,
  markdown: string,
  fields: Record<string, unknown>,
  etag: string | null | undefined
): Promise<IModelCard> {
  const headers: Record<string, string> = {};
  if (etag) {
    headers['If-Match'] = etag;
  }
  return requestAPI<IModelCard>(`${modelPath(slug, name)}/card`, {
    method: 'PUT',
    headers,
    body: JSON.stringify({ markdown, fields })
  });
}

/** Recent audit events the caller may read, newest first (optionally of one project). */
export function listEvents(limit = 50, project?: string): Promise<{ items: IAuditEvent[] }> {
  const only = project ? `&project=${encodeURIComponent(project)}` : '';
  return requestAPI<{ items: IAuditEvent[] }>(`audit?limit=${limit}&sort=-time${only}`);
}

// -- dataset uploads (the resumable upload endpoints) -------------------------------------

export interface IUploadFile {
  path: string;
  size: number;
  digest: string;
  chunks: [string, number][];
}

export interface IUpload {
  id: string;
  state: string;
  missing: string[];
  missing_bytes?: number;
}

function uploadsPath(slug: string, name: string): string {
  return `projects/${encodeURIComponent(slug)}/datasets/${encodeURIComponent(name)}/uploads`;
}

export function startUpload(
  slug: string,
  name: string,
  files: IUploadFile[],
  signal?: AbortSignal
): Promise<IUpload> {
  return requestAPI<IUpload>(uploadsPath(slug, name), {
    method: 'POST',
    body: JSON.stringify({ files }),
    signal
  });
}

export function sendChunks(
  slug: string,
  name: string,
  id: string,
  body: Uint8Array,
  signal?: AbortSignal
): Promise<{ received: number; stored: number }> {
  return requestAPI(`${uploadsPath(slug, name)}/${encodeURIComponent(id)}/chunks`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream' },
    body: body as unknown as BodyInit,
    signal
  });
}

export function commitUpload(
  slug: string,
  name: string,
  id: string,
  message: string
): Promise<{ version: { version: number } }> {
  return requestAPI(`${uploadsPath(slug, name)}/${encodeURIComponent(id)}/commit`, {
    method: 'POST',
    body: JSON.stringify({ message })
  });
}

export function abortUpload(slug: string, name: string, id: string): Promise<null> {
  return requestAPI<null>(`${uploadsPath(slug, name)}/${encodeURIComponent(id)}`, {
    method: 'DELETE'
  });
}

export { WorkbenchAPIError };
