/** Message factories of the dashboard's errors: each says what is wrong and how to fix it. */
export const UNGUARDED_IN_PRODUCTION = (path: string) =>
  `DurableExecutionDashboardModule.forRoot() would mount the dashboard at "${path}" without a guard while ` +
  'NODE_ENV=production: anyone who reaches the app could read every run and cancel, retry or skip them. Pass ' +
  '`guard: YourAuthGuard` (a CanActivate class), or `allowUnauthenticated: true` if something else protects the route ' +
  '(a private network, an authenticating proxy).';
export const INVALID_OPTION = (problem: string) => `DurableExecutionDashboardModule.forRoot(): ${problem}.`;
export const CROSS_SITE = (why: string) =>
  `Cross-site request refused (${why}): the dashboard's actions are only accepted from its own pages.`;
export const MISSING_TOKEN =
  'Missing or wrong CSRF token: send the token of the dashboard page (GET <path>/api/csrf gives one and sets its cookie) ' +
  'in the X-Cairn-CSRF header, with the cookie.';
export const NOT_JSON = 'Actions take a JSON body: send Content-Type: application/json.';
