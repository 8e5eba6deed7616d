/**
 * Pure helpers of the REST client (no JupyterLab imports, so unit tests load them as is).
 */

/** A response body as JSON, or null (empty, or not JSON: an HTML error page of a proxy). */
export function parseBody(text: string): any {
  if (!text) {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** The message a user sees for a failed request: the API's own `message`, else the status. */
export function errorMessage(status: number, statusText: string, data: unknown): string {
  const message = (data as { message?: unknown } | null)?.message;
  if (typeof message === 'string' && message.trim()) {
    return message;
  }
  return `${status} ${statusText}`.trim();
}

/** The text of any error, for the UI (never a stack trace). */
export function messageOf(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
