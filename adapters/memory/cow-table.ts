const DELETED: unique symbol = Symbol("deleted");
type Write<V> = V | typeof DELETED;

/**
 * A committed table of rows keyed by a string, optionally indexed by a partition (the system a
 * row belongs to), so reads by system never scan other systems' rows.
 *
 * Rows are never changed in place: a transaction stages its writes in a `TableStage` and the
 * store applies them with `TableStage.apply` at commit. Values are stored as given; the store
 * copies at its boundary.
 */
export class CowTable<V> {
  readonly #rows = new Map<string, V>();
  // Per partition its rows by key (the same values as `#rows`), so a partition is read without a
  // lookup per row in the table-wide map.
  readonly #partitions = new Map<string, Map<string, V>>();
  readonly #flagged = new Set<string>();
  readonly #keyOf: (value: V) => string;
  readonly #partitionOf: ((value: V) => string) | undefined;
  readonly #flagOf: ((value: V) => boolean) | undefined;

  /**
   * @param keyOf the primary key of a row; must be collision-free (compose tuples with
   *   `JSON.stringify`).
   * @param partitionOf the partition of a row, when the table is read by partition. A row's
   *   partition may change when it is replaced.
   * @param flagOf a predicate whose committed matches are indexed (`flaggedKeys`), when the table
   *   is often searched for a few rows among many (maintenance windows with a boundary still to
   *   process). A row's flag may change when it is replaced.
   */
  constructor(keyOf: (value: V) => string, partitionOf?: (value: V) => string, flagOf?: (value: V) => boolean) {
    this.#keyOf = keyOf;
    this.#partitionOf = partitionOf;
    this.#flagOf = flagOf;
  }

  /** Number of committed rows. */
  get size(): number {
    return this.#rows.size;
  }

  /** The committed row with this key, `undefined` when absent. */
  get(key: string): V | undefined {
    return this.#rows.get(key);
  }

  /** Committed keys, in insertion order. */
  keys(): IterableIterator<string> {
    return this.#rows.keys();
  }

  /** Committed rows with their keys, in insertion order. Do not write the table while iterating. */
  entries(): IterableIterator<[string, V]> {
    return this.#rows.entries();
  }

  /** Committed rows of one partition by key (empty for an unknown partition or an unpartitioned table). */
  partitionRows(partition: string): ReadonlyMap<string, V> {
    return this.#partitions.get(partition) ?? EMPTY;
  }

  /** Every partition that holds a committed row (none for an unpartitioned table). */
  partitionNames(): IterableIterator<string> {
    return this.#partitions.keys();
  }

  /** Committed keys of the rows `flagOf` accepts (none when the table has no `flagOf`). */
  flaggedKeys(): ReadonlySet<string> {
    return this.#flagged;
  }

  /** Opens a staging area over this table for one transaction. */
  stage(): TableStage<V> {
    return new TableStage(this, this.#keyOf, this.#partitionOf);
  }

  /** Applies staged writes. Synchronous, and cannot fail halfway: only map operations. */
  applyWrites(writes: ReadonlyMap<string, Write<V>>): void {
    for (const [key, write] of writes) {
      const previous = this.#rows.get(key);
      if (write === DELETED) {
        if (previous !== undefined) this.#unindex(key, previous);
        this.#rows.delete(key);
        continue;
      }
      this.#rows.set(key, write);
      // A replaced row in the same partition with the same flag (a slice or entity updated by a
      // run, the common case) keeps its index entries.
      if (previous !== undefined && this.#sameIndex(previous, write)) {
        if (this.#partitionOf !== undefined) this.#partitions.get(this.#partitionOf(write))?.set(key, write);
        continue;
      }
      if (previous !== undefined) this.#unindex(key, previous);
      this.#index(key, write);
    }
  }

  #sameIndex(a: V, b: V): boolean {
    return (
      (this.#partitionOf === undefined || this.#partitionOf(a) === this.#partitionOf(b)) &&
      (this.#flagOf === undefined || this.#flagOf(a) === this.#flagOf(b))
    );
  }

  #index(key: string, value: V): void {
    if (this.#flagOf?.(value) === true) this.#flagged.add(key);
    if (this.#partitionOf === undefined) return;
    const partition = this.#partitionOf(value);
    let rows = this.#partitions.get(partition);
    if (rows === undefined) {
      rows = new Map();
      this.#partitions.set(partition, rows);
    }
    rows.set(key, value);
  }

  #unindex(key: string, value: V): void {
    this.#flagged.delete(key);
    if (this.#partitionOf === undefined) return;
    const partition = this.#partitionOf(value);
    const rows = this.#partitions.get(partition);
    if (rows === undefined) return;
    rows.delete(key);
    // An emptied partition is dropped, so deleted systems leave nothing behind.
    if (rows.size === 0) this.#partitions.delete(partition);
  }
}

const EMPTY: ReadonlyMap<string, never> = new Map<string, never>();
const NO_KEYS: ReadonlySet<string> = new Set();
const NO_WRITES: ReadonlyMap<string, never> = new Map<string, never>();

/**
 * One transaction's copy-on-write view of a `CowTable`: reads see the committed rows overlaid
 * with this stage's own puts and deletes (a staged delete hides the committed row); nothing
 * reaches the table until `apply`. Another transaction's stage over the same table never sees
 * these writes.
 */
export class TableStage<V> {
  readonly #table: CowTable<V>;
  readonly #keyOf: (value: V) => string;
  readonly #partitionOf: ((value: V) => string) | undefined;
  // Both made on the first write: most stages of a transaction are never written.
  #writes: Map<string, Write<V>> | undefined;
  // Keys put in this stage per partition; committed keys come from the table's own index.
  #stagedPartitions: Map<string, Set<string>> | undefined;

  /** Use `CowTable.stage()`. */
  constructor(table: CowTable<V>, keyOf: (value: V) => string, partitionOf: ((value: V) => string) | undefined) {
    this.#table = table;
    this.#keyOf = keyOf;
    this.#partitionOf = partitionOf;
  }

  /** Whether this stage holds any write. */
  get dirty(): boolean {
    return this.#writes !== undefined && this.#writes.size > 0;
  }

  /** The row with this key as this transaction sees it, `undefined` when absent or deleted. */
  get(key: string): V | undefined {
    const write = this.#writes?.get(key);
    if (write === DELETED) return undefined;
    return write ?? this.#table.get(key);
  }

  /** Keys written (put or deleted) in this stage. */
  writtenKeys(): IterableIterator<string> {
    return (this.#writes ?? NO_WRITES).keys();
  }

  /** Stages a create-or-replace of the row with `value`'s key. */
  put(value: V): void {
    const key = this.#keyOf(value);
    (this.#writes ??= new Map<string, Write<V>>()).set(key, value);
    if (this.#partitionOf !== undefined) {
      const partition = this.#partitionOf(value);
      const staged = (this.#stagedPartitions ??= new Map<string, Set<string>>());
      let keys = staged.get(partition);
      if (keys === undefined) {
        keys = new Set();
        staged.set(partition, keys);
      }
      keys.add(key);
    }
  }

  /** Stages a delete; deleting an absent row is a no-op at commit. */
  delete(key: string): void {
    (this.#writes ??= new Map<string, Write<V>>()).set(key, DELETED);
  }

  /** Every row of `partition` as this transaction sees it: committed ones first, then new ones. */
  partition(partition: string): V[] {
    const committed = this.#table.partitionRows(partition);
    if (this.#writes === undefined) return [...committed.values()]; // nothing staged: the committed rows
    const rows: V[] = [];
    for (const key of committed.keys()) this.#pushIn(rows, key, partition);
    for (const key of this.#stagedPartitions?.get(partition) ?? NO_KEYS) if (!committed.has(key)) this.#pushIn(rows, key, partition);
    return rows;
  }

  #pushIn(rows: V[], key: string, partition: string): void {
    const row = this.get(key);
    // A staged put may have moved a committed row to another partition.
    if (row !== undefined && this.#partitionOf?.(row) === partition) rows.push(row);
  }

  /** Every key this transaction sees: committed keys not deleted here, then keys new here. */
  keys(): string[] {
    const keys: string[] = [];
    for (const key of this.#table.keys()) if (this.get(key) !== undefined) keys.push(key);
    for (const [key, write] of this.#writes ?? NO_WRITES) {
      if (write !== DELETED && this.#table.get(key) === undefined) keys.push(key);
    }
    return keys;
  }

  /** Applies this stage's writes to the table (at commit). */
  apply(): void {
    if (this.#writes !== undefined) this.#table.applyWrites(this.#writes);
  }
}
