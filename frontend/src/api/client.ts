export type FieldErrors = Record<string, string[]>;

/** An API failure carrying the server's words: `detail` plus optional per-field messages. */
export class ApiError extends Error {
  readonly status: number;
  readonly fieldErrors: FieldErrors;

  constructor(status: number, message: string, fieldErrors: FieldErrors = {}) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.fieldErrors = fieldErrors;
  }

  /** DRF session auth answers 403 (not 401) when nobody is logged in. */
  get isAuthProblem(): boolean {
    return this.status === 401 || this.status === 403;
  }
}

const CSRF_COOKIE = "csrftoken";
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

function readCookie(name: string): string | null {
  for (const part of document.cookie.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return decodeURIComponent(rest.join("="));
  }
  return null;
}

async function csrfToken(): Promise<string> {
  // Django sets the cookie with index.html; ask for it only if it is missing (e.g. dev server).
  const existing = readCookie(CSRF_COOKIE);
  if (existing) return existing;
  await send("GET", "/api/v1/auth/csrf/");
  return readCookie(CSRF_COOKIE) ?? "";
}

export async function request<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (!SAFE_METHODS.has(method)) headers["X-CSRFToken"] = await csrfToken();
  return (await send(method, path, headers, body)) as T;
}

/** A multipart POST (file uploads); the browser sets the Content-Type with its boundary. */
export async function postForm<T>(path: string, form: FormData): Promise<T> {
  const headers = { Accept: "application/json", "X-CSRFToken": await csrfToken() };
  return (await send("POST", path, headers, form)) as T;
}

/**
 * POSTs `body` and returns the response once its headers say it succeeded, for the caller to
 * read as a stream (server-sent events). Same cookie and CSRF handling, and the same
 * `ApiError`s for refusals, as `request`.
 */
export async function openStream(path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  const headers = {
    Accept: "text/event-stream",
    "Content-Type": "application/json",
    "X-CSRFToken": await csrfToken(),
  };
  let response: Response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers,
      credentials: "same-origin",
      body: JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (signal?.aborted) throw error;
    throw new ApiError(0, "Could not reach the server. Check your connection and try again.");
  }
  if (!response.ok) throw errorFrom(response.status, await readJson(response));
  return response;
}

async function send(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined || body instanceof FormData ? body : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, "Could not reach the server. Check your connection and try again.");
  }
  const payload: unknown = response.status === 204 ? undefined : await readJson(response);
  if (!response.ok) throw errorFrom(response.status, payload);
  return payload;
}

async function readJson(response: Response): Promise<unknown> {
  const text = await response.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined; // e.g. an HTML error page from a proxy
  }
}

function errorFrom(status: number, payload: unknown): ApiError {
  const body = (typeof payload === "object" && payload !== null ? payload : {}) as {
    detail?: unknown;
    errors?: unknown;
  };
  const detail =
    typeof body.detail === "string" && body.detail
      ? body.detail
      : `The server answered with an error (HTTP ${status}).`;
  return new ApiError(status, detail, parseFieldErrors(body.errors));
}

/**
 * Messages by field. Nested serializers answer with objects (`{"rules": [{"min_strength": [...]}]}`,
 * `{"rating_rubric": [{"3": [...]}]}`): those become dotted names, `rules.min_strength`.
 */
export function parseFieldErrors(errors: unknown, prefix = ""): FieldErrors {
  if (typeof errors !== "object" || errors === null) return {};
  const result: FieldErrors = {};
  const add = (field: string, message: string) => (result[field] = [...(result[field] ?? []), message]);
  for (const [key, value] of Object.entries(errors)) {
    const field = prefix ? `${prefix}.${key}` : key;
    for (const item of Array.isArray(value) ? value : [value]) {
      if (typeof item !== "object" || item === null) add(field, String(item));
      else for (const [name, messages] of Object.entries(parseFieldErrors(item, field))) messages.forEach((m) => add(name, m));
    }
  }
  return result;
}

/** The message to show for any thrown value. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : "Something went wrong.";
}
