import type { ShownValue } from '../dashboard-api.interface.js';
import type { ValueNode } from '../value-tree.js';
import { html, trusted, type SafeHtml } from './html.js';

const INDENT = '  ';

/** A value tree as indented, JSON-like text with typed spans (`Date(…)`, `12n`, `Map(2) {…}`, `Set(1) […]`). */
export function valueText(node: ValueNode, depth = 0): SafeHtml {
  const pad = INDENT.repeat(depth + 1);
  const end = INDENT.repeat(depth);
  const more = (n: number | undefined) => (n ? html`\n${pad}<span class="v-cut">… ${n.toLocaleString('en')} more</span>` : '');
  switch (node.type) {
    case 'null':
    case 'undefined':
      return html`<span class="v-null">${node.type}</span>`;
    case 'boolean':
      return html`<span class="v-bool">${String(node.value)}</span>`;
    case 'number':
      return html`<span class="v-num">${String(node.value)}</span>`;
    case 'bigint':
      return html`<span class="v-num">${node.value}n</span>`;
    case 'string': {
      const quoted = JSON.stringify(node.value);
      const cut = node.length !== undefined ? html`<span class="v-cut">… (${node.length.toLocaleString('en')} characters)</span>` : '';
      return html`<span class="v-str">${node.length !== undefined ? quoted.slice(0, -1) : quoted}</span>${cut}`;
    }
    case 'date':
      return html`<span class="v-date">Date(${node.value})</span>`;
    case 'regexp':
      return html`<span class="v-date">${node.value}</span>`;
    case 'error':
      return html`<span class="v-date">${node.name}(${JSON.stringify(node.message)})</span>`;
    case 'circular':
      return html`<span class="v-cut">[circular]</span>`;
    case 'other':
      return html`<span class="v-cut">${node.value}</span>`;
    case 'array':
      if (node.items.length === 0 && !node.more) return trusted('[]');
      return html`[${node.items.map((item, i) => html`\n${pad}${valueText(item, depth + 1)}${i < node.items.length - 1 || node.more ? ',' : ''}`)}${more(node.more)}\n${end}]`;
    case 'set':
      return html`<span class="v-type">Set(${node.size})</span> [${node.items.map(
        (item, i) => html`\n${pad}${valueText(item, depth + 1)}${i < node.items.length - 1 || node.more ? ',' : ''}`,
      )}${more(node.more)}${node.size > 0 ? html`\n${end}` : ''}]`;
    case 'map':
      return html`<span class="v-type">Map(${node.size})</span> {${node.entries.map(
        (e, i) => html`\n${pad}${valueText(e.key, depth + 1)} =&gt; ${valueText(e.value, depth + 1)}${i < node.entries.length - 1 || node.more ? ',' : ''}`,
      )}${more(node.more)}${node.size > 0 ? html`\n${end}` : ''}}`;
    case 'object': {
      const label = node.className ? html`<span class="v-type">${node.className}</span> ` : '';
      if (node.entries.length === 0 && !node.more) return html`${label}{}`;
      return html`${label}{${node.entries.map(
        (e, i) => html`\n${pad}<span class="v-key">${JSON.stringify(e.key)}</span>: ${valueText(e.value, depth + 1)}${i < node.entries.length - 1 || node.more ? ',' : ''}`,
      )}${more(node.more)}\n${end}}`;
    }
  }
}

/** A shown value in a block, with a "show all" link when it was cut. */
export function valueBlock(value: ShownValue, showAllHref?: string): SafeHtml {
  const link = value.truncated && showAllHref ? html`<a class="show-all" href="${showAllHref}">Show all</a>` : '';
  return html`<div class="value"><pre class="json">${valueText(value.tree)}</pre>${link}</div>`;
}

/** An error message in a block: its text as is when it is a string (redact may return anything), else the tree. */
export function messageBlock(value: ShownValue, showAllHref?: string): SafeHtml {
  if (value.tree.type !== 'string') return valueBlock(value, showAllHref);
  const link = value.truncated && showAllHref ? html`<a class="show-all" href="${showAllHref}">Show all</a>` : '';
  const cut = value.tree.length !== undefined ? html`<span class="v-cut">… (${value.tree.length.toLocaleString('en')} characters)</span>` : '';
  return html`<div class="value"><pre class="json msg">${value.tree.value}${cut}</pre>${link}</div>`;
}

/** A short value (an error message): plain text when the tree is a string, else the tree. */
export function messageText(value: ShownValue): SafeHtml {
  if (value.tree.type === 'string') {
    return html`<span class="msg">${value.tree.value}</span>${value.tree.length !== undefined ? html`<span class="v-cut">…</span>` : ''}`;
  }
  return html`<pre class="json">${valueText(value.tree)}</pre>`;
}
