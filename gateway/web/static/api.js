// The hub's JSON API (/api/v1) with the tab's token, and downloads of its exports.
// Every failure becomes an ApiError carrying the hub's own words (`detail`) and `code`.

const API = "/api/v1";
export const TOKEN_KEY = "recoghub.token";

export class ApiError extends Error {
  constructor(status, detail, code) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

// Without a token no Authorization is sent: a public challenge's page reads as anyone.
function authorization() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function send(path, method, body) {
  const headers = authorization();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  try {
    return await fetch(API + path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, `cannot reach the hub (${err.message})`, "unreachable");
  }
}

/** A validation error's detail may be a list (FastAPI's shape): say where and what. */
function words(detail) {
  if (typeof detail === "string") return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => `${(d.loc ?? []).join(".")}: ${d.msg ?? ""}`).join("; ");
  }
  return null;
}

async function failure(response) {
  const body = await response.json().catch(() => null);
  const detail = words(body?.detail) || response.statusText || "request failed";
  return new ApiError(response.status, detail, body?.code ?? "http_error");
}

/** Call an API path; answers the parsed JSON (null for 204). Throws ApiError. */
export async function api(path, method = "GET", body = undefined) {
  const response = await send(path, method, body);
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  return response.json();
}

/** POST a multipart form (a prediction file) to an API path; answers { status, body }
 * (201 scored, 202 still scoring). Throws ApiError (a 422 names the file's line). */
export async function upload(path, form) {
  let response;
  try {
    response = await fetch(API + path, { method: "POST", headers: authorization(), body: form });
  } catch (err) {
    throw new ApiError(0, `cannot reach the hub (${err.message})`, "unreachable");
  }
  if (!response.ok) throw await failure(response);
  return { status: response.status, body: await response.json() };
}

/** Fetch an export (it needs the token, so no plain link) and hand it to the browser as a
 * file, named as the hub names it (Content-Disposition). Throws ApiError. */
export async function download(path, fallbackName) {
  const response = await send(path, "GET");
  if (!response.ok) throw await failure(response);
  const disposition = response.headers.get("Content-Disposition") ?? "";
  const name = disposition.match(/filename="([^"]+)"/)?.[1] ?? fallbackName;
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
