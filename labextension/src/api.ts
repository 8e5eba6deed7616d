/**
 * The workbench REST API, through JupyterLab's server connection (token, XSRF and base URL
 * work the same on a standalone server and behind JupyterHub).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

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

export interface IPage<T> {
  items: T[];
  next_cursor: string | null;
}

/** Call `path` below the workbench API; resolve to the parsed JSON body. */
export async function requestAPI<T>(
  path: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, API_PATH, path);
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
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message =
      data && typeof data.message === 'string'
        ? data.message
        : `${response.status} ${response.statusText}`.trim();
    throw new WorkbenchAPIError(message, response.status, data?.error);
  }
  return data as T;
}

export function listProjects(): Promise<IPage<IProject>> {
  return requestAPI<IPage<IProject>>('projects?limit=200');
}

export function createProject(name: string): Promise<IProject> {
  return requestAPI<IProject>('projects', {
    method: 'POST',
    body: JSON.stringify({ name })
  });
}

export function listMembers(slug: string): Promise<IPage<IMember>> {
  return requestAPI<IPage<IMember>>(`projects/${encodeURIComponent(slug)}/members`);
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

export function listDocuments(slug: string): Promise<{ items: IDocument[] }> {
  return requestAPI<{ items: IDocument[] }>(`projects/${encodeURIComponent(slug)}/documents`);
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
