/** Injection token of the dashboard's validated options. */
export const DASHBOARD_OPTIONS = Symbol('cairn:dashboard-options');

/** Where the dashboard is mounted when `path` is not given. */
export const DEFAULT_DASHBOARD_PATH = '/workflows';

/** Characters of a value shown before it is cut (a "show all" link then gives the whole value). */
export const VALUE_PREVIEW_CHARS = 10_000;

/** Characters of a value that "show all" renders at most (shared references can expand a stored value a lot). */
export const VALUE_FULL_CHARS = 5_000_000;

/** Characters of an error message shown in the runs list. */
export const LIST_ERROR_CHARS = 300;

/** Runs per page of the list: the default and the most the API gives. */
export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 200;

/** History events read for the run page (a run keeps at most RUN_HISTORY_LIMIT, 1,000). */
export const HISTORY_PAGE_SIZE = 1_000;
/** Children listed on a run's page (and in the API's run detail); the rest are on the runs list with `?parent=`. */
export const CHILDREN_SHOWN = 20;

/** Most runs one bulk action touches; run it again for more. */
export const BULK_LIMIT = 10_000;

/** Bulk actions in flight at once. */
export const BULK_CONCURRENCY = 8;

/** Largest JSON value (serialized, in characters) an action body may carry: a signal payload, a skip output, a fork input. */
export const MAX_ACTION_VALUE_CHARS = 1_048_576;

/** Longest text of a query parameter (filters, cursors). */
export const MAX_QUERY_CHARS = 2_048;

/** Cookie and header of the CSRF token (double submit: the page reads the token, the cookie carries it back). */
export const CSRF_COOKIE = 'cairn_dashboard_csrf';
export const CSRF_HEADER = 'x-cairn-csrf';

/** How often an open live stream sends a comment, so proxies keep it open. */
export const SSE_KEEPALIVE_MS = 20_000;
