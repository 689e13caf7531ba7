import { createHash } from 'node:crypto';
import { DASHBOARD_SCRIPT } from './dashboard.script.js';
import { DASHBOARD_STYLE } from './dashboard.style.js';

/** A file the dashboard serves: its name carries a hash of its content, so browsers may cache it for good. */
export interface DashboardAsset {
  name: string;
  contentType: string;
  body: string;
}

function asset(stem: string, ext: string, contentType: string, body: string): DashboardAsset {
  const hash = createHash('sha256').update(body).digest('base64url').slice(0, 10);
  return { name: `${stem}.${hash}.${ext}`, contentType, body };
}

export const SCRIPT_ASSET = asset('dashboard', 'js', 'text/javascript; charset=utf-8', DASHBOARD_SCRIPT);
export const STYLE_ASSET = asset('dashboard', 'css', 'text/css; charset=utf-8', DASHBOARD_STYLE);

/** The served files by name. */
export const ASSETS: ReadonlyMap<string, DashboardAsset> = new Map([SCRIPT_ASSET, STYLE_ASSET].map((a) => [a.name, a]));
