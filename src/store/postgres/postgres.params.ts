/** A statement parameter: its name and the SQL type every reference to it is cast to. */
export type ParamSpec<N extends string = string> = readonly [name: N, type: string];

/** What SQL text builders need of a parameter table: the placeholders of (at least) the parameters `N`. */
export interface ParamRefs<N extends string> {
  ref(name: N): string;
}

/**
 * The parameters of a statement, by name, from one table: `ref(name)` is the `$n::type` placeholder to write in the
 * SQL text, `values(byName)` the values array in the same order. Adding a parameter is one row of the table, and
 * the positions of the text and of the values cannot drift apart.
 */
export class ParamTable<N extends string> implements ParamRefs<N> {
  /** The names, in `$n` order. */
  readonly names: readonly N[];
  private readonly positions: ReadonlyMap<N, number>;

  constructor(readonly specs: readonly ParamSpec<N>[]) {
    this.names = specs.map(([name]) => name);
    this.positions = new Map(this.names.map((name, i) => [name, i]));
    if (this.positions.size !== specs.length) throw new Error(`Duplicate parameter names in ${this.names.join(', ')}.`);
  }

  /** The placeholder of parameter `name` with its cast, e.g. `$3::text`. */
  ref(name: N): string {
    const i = this.positions.get(name);
    if (i === undefined) throw new Error(`The statement has no parameter "${name}".`);
    return `$${i + 1}::${this.specs[i][1]}`;
  }

  // NOTE: values() and valuesWith() run for every checkpoint: plain loops, no spread or destructuring.

  /** The values array for the statement, from values by name (extra names are ignored). */
  values(byName: Readonly<Record<N, unknown>>): unknown[] {
    const names = this.names;
    const out = new Array<unknown>(names.length);
    for (let i = 0; i < names.length; i++) out[i] = byName[names[i]];
    return out;
  }

  /** The values array from two sources: `extra` for the names `E`, `byName` for the others. */
  valuesWith<E extends N>(byName: Readonly<Record<Exclude<N, E>, unknown>>, extra: Readonly<Record<E, unknown>>): unknown[] {
    const names = this.names;
    const out = new Array<unknown>(names.length);
    for (let i = 0; i < names.length; i++) {
      const name = names[i];
      out[i] = Object.hasOwn(extra, name) ? extra[name as E] : byName[name as Exclude<N, E>];
    }
    return out;
  }

  /** The table of only the parameters `names`, in this table's order (renumbered). */
  only<M extends N>(...names: M[]): ParamTable<M> {
    return new ParamTable(this.specs.filter(([name]) => (names as N[]).includes(name)) as ParamSpec<M>[]);
  }

  /** The table without the parameters `names` (the others keep their order, renumbered). */
  without<M extends N>(...names: M[]): ParamTable<Exclude<N, M>> {
    return new ParamTable(this.specs.filter(([name]) => !(names as N[]).includes(name)) as ParamSpec<Exclude<N, M>>[]);
  }
}
