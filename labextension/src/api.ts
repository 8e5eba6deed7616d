/**
 * The workbench REST API, through JupyterLab's server connection (token, XSRF and base URL
 * work the same on a standalone server and behind JupyterHub).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { encodeFilePath } from './datasetFormat';
import { errorMessage, parseBody } from './http';

export { messageOf } from './http';

export const API_PATH = 'workbench/api/v1';

/** An API failure, carrying the API's own `message` (shown to the user as is). */
export class WorkbenchAPIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string
  ) {
    super(message);
    this.name = 'WorkbenchAPIError';
  }
}

export interface IProject {
  slug: string;
  name: string;
  description: string | null;
  visibility: string;
  team: string | null;
  owner: string | null;
  my_role: string;
  archived: boolean;
}

export interface IMember {
  member: string;
  kind: 'user' | 'team';
  role: string;
  user?: { username: string; display_name: string | null };
  team?: { name: string; display_name: string | null };
}

/** The answer to removing a member: the role a removed user still holds through teams. */
export interface IMemberRemoved {
  member: string;
  removed_role: string;
  remaining_role: string | null;
  remaining_teams: { team: string; role: string }[];
}

export interface IPage<T> {
  items: T[];
  next_cursor: string | null;
}

/** Call `path` below the workbench API; resolve to the parsed JSON body. */
export function requestAPI<T>(
  path: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  return requestServer<T>(URLExt.join(API_PATH, path), init, settings);
}

/** Call `path` below this Jupyter server's base URL; resolve to the parsed JSON body (a
 * failure is a WorkbenchAPIError with the server's own message). */
export async function requestServer<T>(
  path: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, path);
  let response: Response;
  try {
    // 'no-cache' (revalidate) rather than JupyterLab's 'no-store', which appends a cache-busting
    // query parameter that the API refuses as unknown
    response = await ServerConnection.makeRequest(url, { cache: 'no-cache', ...init }, settings);
  } catch (error) {
    throw new WorkbenchAPIError(
      `The Jupyter server could not be reached (${(error as Error).message}).`,
      0
    );
  }
  const data = parseBody(await response.text());
  if (!response.ok) {
    throw new WorkbenchAPIError(
      errorMessage(response.status, response.statusText, data),
      response.status,
      typeof data?.error === 'string' ? data.error : undefined
    );
  }
  return data as T;
}

/** The query of a page: `limit`, and `cursor` after the first. */
function pageQuery(cursor: string | null, limit: number): string {
  return [`limit=${limit}`, ...(cursor ? [`cursor=${encodeURIComponent(cursor)}`] : [])].join('&');
}

/** Every project you can see, by name (read a page of 500 at a time). */
export async function listProjects(): Promise<IPage<IProject>> {
  const items: IProject[] = [];
  let cursor: string | null = null;
  do {
    const page: IPage<IProject> = await requestAPI<IPage<IProject>>(
      `projects?sort=name&${pageQuery(cursor, 500)}`
    );
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor !== null);
  return { items, next_cursor: null };
}

export function createProject(name: string): Promise<IProject> {
  return requestAPI<IProject>('projects', {
    method: 'POST',
    body: JSON.stringify({ name })
  });
}

export function listMembers(
  slug: string,
  cursor: string | null = null,
  limit = 50
): Promise<IPage<IMember>> {
  return requestAPI<IPage<IMember>>(
    `projects/${encodeURIComponent(slug)}/members?${pageQuery(cursor, limit)}`
  );
}

/** A collaborative document (README, notes, a card, a report) and its room. */
export interface IDocument {
  id: string;
  project: string;
  kind: string;
  ref: string;
  title: string;
  created_by: string | null;
  created_at: string;
  can_write?: boolean;
  room: string;
  text?: string;
}

/** A page of the project's documents, newest first. */
export function listDocuments(
  slug: string,
  cursor: string | null = null,
  limit = 50
): Promise<IPage<IDocument>> {
  return requestAPI<IPage<IDocument>>(
    `projects/${encodeURIComponent(slug)}/documents?sort=-created&${pageQuery(cursor, limit)}`
  );
}

/** Create the project's document of this kind and ref, or get the one that exists. */
export function openDocumentRecord(slug: string, kind: string, ref = ''): Promise<IDocument> {
  return requestAPI<IDocument>(`projects/${encodeURIComponent(slug)}/documents`, {
    method: 'POST',
    body: JSON.stringify({ kind, ref })
  });
}

export function getDocument(id: string): Promise<IDocument> {
  return requestAPI<IDocument>(`documents/${encodeURIComponent(id)}`);
}

export interface IMe {
  username: string;
  display_name: string | null;
}

export function getMe(): Promise<IMe> {
  return requestAPI<IMe>('me');
}

export interface IPublished {
  kind: string;
  ref: string;
  revision?: number;
  dataset_version?: number;
}

/** Make a card document's text the dataset's or model's card. */
export function publishDocument(id: string): Promise<IPublished> {
  return requestAPI<IPublished>(`documents/${encodeURIComponent(id)}/publish`, { method: 'POST' });
}

/** A versioned dataset of a project. */
export interface IDataset {
  project: string;
  name: string;
  description: string;
  card: string;
  metadata: Record<string, unknown>;
  latest_version: number | null;
  version_count: number;
  /** tag -> version ("v2") */
  tags: Record<string, string>;
  can_write?: boolean;
  created_at?: string;
  updated_at?: string;
}

/** One committed version of a dataset. */
export interface IDatasetVersion {
  version: number;
  name: string;
  parent: number | null;
  message: string;
  author: string | null;
  file_count: number;
  total_bytes: number;
  tags: string[];
  created_at: string;
}

export interface IDatasetFile {
  path: string;
  size: number;
  digest: string;
  media_type: string;
}

/** The diff of two versions (jupyter_workbench/core/dataset_diff.py). */
export interface IDatasetDiff {
  from: number;
  to: number;
  added: { path: string; size: number }[];
  removed: { path: string; size: number }[];
  modified: { path: string; old_size: number; new_size: number }[];
  tables: ITableDiff[];
  summary?: Record<string, number>;
}

/** A CSV/Parquet file's schema and row changes, or why there are none. */
export interface ITableDiff {
  path: string;
  format: string;
  skipped?: string;
  error?: string;
  schema?: {
    added: string[];
    removed: string[];
    changed: { column: string; old_type: string; new_type: string }[];
    columns: string[];
  };
  rows?: { old: number; new: number; added: number; removed: number };
}

function datasetPath(slug: string, name: string): string {
  return `projects/${encodeURIComponent(slug)}/datasets/${encodeURIComponent(name)}`;
}

export function listDatasets(
  slug: string,
  cursor: string | null = null,
  limit = 50
): Promise<IPage<IDataset>> {
  return requestAPI<IPage<IDataset>>(
    `projects/${encodeURIComponent(slug)}/datasets?sort=name&${pageQuery(cursor, limit)}`
  );
}

export function getDataset(slug: string, name: string): Promise<IDataset> {
  return requestAPI<IDataset>(datasetPath(slug, name));
}

export function listVersions(slug: string, name: string): Promise<IPage<IDatasetVersion>> {
  return requestAPI<IPage<IDatasetVersion>>(`${datasetPath(slug, name)}/versions?limit=500`);
}

export function listFiles(
  slug: string,
  name: string,
  ref: string,
  cursor: string | null = null
): Promise<IPage<IDatasetFile>> {
  const more = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
  return requestAPI<IPage<IDatasetFile>>(
    `${datasetPath(slug, name)}/versions/${encodeURIComponent(ref)}/files?limit=500${more}`
  );
}

export function diffVersions(
  slug: string,
  name: string,
  from: string,
  to: string
): Promise<IDatasetDiff> {
  const query = `from=${encodeURIComponent(from)}&to=${encodeURIComponent(to)}`;
  return requestAPI<IDatasetDiff>(`${datasetPath(slug, name)}/diff?${query}`);
}

/** The download address of a file of a version (the browser's session cookie authorises it,
 * as for JupyterLab's own downloads). */
export function fileURL(
  slug: string,
  name: string,
  ref: string,
  path: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return URLExt.join(
    settings.baseUrl,
    API_PATH,
    datasetPath(slug, name),
    'versions',
    encodeURIComponent(ref),
    'files',
    encodeFilePath(path)
  );
}

/** The download address of a whole version as a tar stream. */
export function archiveURL(
  slug: string,
  name: string,
  ref: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): string {
  return URLExt.join(
    settings.baseUrl,
    API_PATH,
    datasetPath(slug, name),
    'versions',
    encodeURIComponent(ref),
    'archive'
  );
}

/** Point `tag` (e.g. "production") at a version ("v2"). */
export function setTag(
  slug: string,
  name: string,
  tag: string,
  version: string
): Promise<{ tag: string; version: number }> {
  return requestAPI(`${datasetPath(slug, name)}/tags/${encodeURIComponent(tag)}`, {
    method: 'PUT',
    body: JSON.stringify({ version })
  });
}

export function deleteTag(slug: string, name: string, tag: string): Promise<null> {
  return requestAPI<null>(`${datasetPath(slug, name)}/tags/${encodeURIComponent(tag)}`, {
    method: 'DELETE'
  });
}

/** An experiment of a project (one MLflow experiment). */
export interface IExperiment {
  name: string;
  mlflow_experiment_id: string;
  mlflow_name: string;
  description: string | null;
  created_at: string;
}

/** A run as runs/search returns it. */
export interface IRun {
  run_id: string;
  name: string | null;
  experiment: string | null;
  status: string | null;
  start_time: number | null;
  end_time: number | null;
  params: Record<string, string>;
  metrics: Record<string, number>;
  tags: Record<string, string>;
}

export interface IRunPage {
  runs: IRun[];
  next_page_token: string | null;
}

/** A metric's history, downsampled by the server to at most max_points (extremes kept). */
export interface IHistory {
  run_id: string;
  key: string;
  total: number;
  downsampled: boolean;
  steps: number[];
  timestamps?: number[];
  values: (number | null)[];
}

export interface IMetricSummary {
  min: number | null;
  max: number | null;
  last: number | null;
  last_step: number | null;
  points: number;
}

/** runs/compare: params that differ, metrics side by side. */
export interface ICompare {
  runs: { run_id: string; name: string | null; experiment: string; status: string }[];
  params: {
    differ: Record<string, Record<string, string | null>>;
    same: Record<string, string | null>;
  };
  metrics: Record<string, Record<string, IMetricSummary | null>>;
  system: Record<string, Record<string, unknown>>;
}

/** One group of runs/aggregate: runs that differ only in the group_by param. */
export interface IAggregateGroup {
  params: Record<string, string>;
  runs: string[];
  steps: number[];
  count: number[];
  mean: (number | null)[];
  std: (number | null)[];
  min: (number | null)[];
  max: (number | null)[];
}

export function listExperiments(
  slug: string,
  cursor: string | null = null,
  limit = 50
): Promise<IPage<IExperiment>> {
  return requestAPI<IPage<IExperiment>>(
    `projects/${encodeURIComponent(slug)}/experiments?${pageQuery(cursor, limit)}`
  );
}

export function searchRuns(body: {
  experiment_ids?: string[];
  projects?: string[];
  filter?: string;
  order_by?: string[];
  max_results?: number;
  page_token?: string;
}): Promise<IRunPage> {
  return requestAPI<IRunPage>('runs/search', { method: 'POST', body: JSON.stringify(body) });
}

export function metricHistory(runId: string, key: string, maxPoints = 2000): Promise<IHistory> {
  return requestAPI<IHistory>(
    `runs/${encodeURIComponent(runId)}/metrics/${encodeURIComponent(key)}/history?max_points=${maxPoints}`
  );
}

export function compareRuns(runIds: string[]): Promise<ICompare> {
  return requestAPI<ICompare>('runs/compare', {
    method: 'POST',
    body: JSON.stringify({ run_ids: runIds })
  });
}

export function aggregateRuns(
  runIds: string[],
  metric: string,
  groupBy: string,
  maxPoints = 2000
): Promise<{ metric: string; group_by: string; groups: IAggregateGroup[] }> {
  return requestAPI('runs/aggregate', {
    method: 'POST',
    body: JSON.stringify({ run_ids: runIds, metric, group_by: groupBy, max_points: maxPoints })
  });
}

/** The run's live WebSocket: `{"run_id", "metrics"?: [{key, value, step, timestamp}], "status"?}`. */
export function liveSocket(
  runId: string,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): WebSocket {
  let url = URLExt.join(settings.wsUrl, API_PATH, 'runs', encodeURIComponent(runId), 'live');
  if (settings.token) {
    url += `?token=${encodeURIComponent(settings.token)}`;
  }
  return new settings.WebSocket(url);
}
