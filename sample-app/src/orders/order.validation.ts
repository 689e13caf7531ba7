import { BadRequestException } from '@nestjs/common';
import type { RunStatus } from '../cairn.js';
import type { OrderInput } from './order.types.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const MAX_ITEMS = 100;
const MAX_TEXT = 100;

function text(value: unknown, field: string, problems: string[]): string {
  if (typeof value !== 'string' || value.trim() === '' || value.length > MAX_TEXT) {
    problems.push(`${field} must be a non-empty string of at most ${MAX_TEXT} characters`);
    return '';
  }
  return value;
}

/**
 * Checks the body of `POST /orders` and builds the run's input from the known fields only.
 * @throws BadRequestException listing every problem
 */
export function parseOrderInput(body: unknown): OrderInput {
  if (!isObject(body)) throw new BadRequestException('The body must be a JSON object: { customerId, items: [{ sku, qty }], amount }.');
  const problems: string[] = [];
  const customerId = text(body.customerId, 'customerId', problems);
  const items: OrderInput['items'] = [];
  if (!Array.isArray(body.items) || body.items.length === 0 || body.items.length > MAX_ITEMS) {
    problems.push(`items must be a non-empty array of at most ${MAX_ITEMS} { sku, qty }`);
  } else {
    body.items.forEach((item: unknown, i) => {
      if (!isObject(item)) return void problems.push(`items[${i}] must be an object { sku, qty }`);
      const sku = text(item.sku, `items[${i}].sku`, problems);
      if (typeof item.qty !== 'number' || !Number.isSafeInteger(item.qty) || item.qty <= 0) {
        problems.push(`items[${i}].qty must be a positive integer`);
      }
      items.push({ sku, qty: item.qty as number });
    });
  }
  if (typeof body.amount !== 'number' || !Number.isFinite(body.amount) || body.amount <= 0) {
    problems.push('amount must be a number greater than 0');
  }
  if (problems.length > 0) throw new BadRequestException(problems);
  return { customerId, items, amount: body.amount as number };
}

/** Checks the body of `POST /orders/:id/approve` (optional `{ approvedBy }`). */
export function parseApprover(body: unknown): string {
  if (body === undefined || (isObject(body) && body.approvedBy === undefined)) return 'operator';
  const problems: string[] = [];
  const approvedBy = isObject(body) ? text(body.approvedBy, 'approvedBy', problems) : (problems.push('The body must be a JSON object { approvedBy }'), '');
  if (problems.length > 0) throw new BadRequestException(problems);
  return approvedBy;
}

/** The query of `GET /orders`: `?status=waiting,failed&limit=20&cursor=…`. Statuses and cursors are checked by the client. */
export function parseListQuery(query: Record<string, unknown>): { status?: RunStatus[]; limit?: number; cursor?: string } {
  const one = (name: string): string | undefined => {
    const v = query[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw new BadRequestException(`Give ${name} once, as a string.`);
    return v;
  };
  const limitText = one('limit');
  if (limitText !== undefined && !/^\d{1,9}$/.test(limitText)) throw new BadRequestException('limit must be an integer from 1 to 1000.');
  const statusText = one('status');
  return {
    status: statusText === undefined ? undefined : (statusText.split(',').map((s) => s.trim()) as RunStatus[]),
    limit: limitText === undefined ? undefined : Number(limitText),
    cursor: one('cursor'),
  };
}
