// What a list screen sends and saves, as plain functions: the conditions of its filter
// bar written in the API's filter grammar (docs/API.md, "Filter grammar"), the sort of a
// clicked column, and the chosen rows as a CSV file a spreadsheet opens safely.

/** How a field is filtered: the operators offered and the value's input. */
export type FieldType = "text" | "choice" | "number" | "date" | "user";

export interface FilterField {
  /** The API's field name (`lifecycleStage`). */
  field: string;
  label: string;
  type: FieldType;
  /** For `choice`: the values and their labels. */
  choices?: { value: string; label: string }[];
}

/** The operators of the filter bar; `contains` and the date ones map onto the API's. */
export const OPERATORS = {
  text: ["contains", "eq", "neq", "startsWith", "empty", "notEmpty"],
  choice: ["eq", "neq"],
  number: ["eq", "gt", "gte", "lt", "lte", "empty", "notEmpty"],
  date: ["onOrAfter", "before", "empty", "notEmpty"],
  user: ["eq", "neq"],
} as const satisfies Record<FieldType, readonly string[]>;

export type Operator = (typeof OPERATORS)[FieldType][number];

export interface Condition {
  field: string;
  op: Operator;
  value: string;
}

/** Does the operator take a value? */
export function needsValue(op: Operator): boolean {
  return op !== "empty" && op !== "notEmpty";
}

/** A text value in the grammar's quotes (`"a \"b\""`). */
export function quote(s: string): string {
  return `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** `%` and `_` are wildcards of `like`: a typed one is meant literally. */
function literalLike(s: string): string {
  return s.replace(/[\\%_]/g, (c) => `\\${c}`);
}

/** One condition in the grammar, or null while its value is still missing. */
export function conditionFilter(c: Condition, type: FieldType): string | null {
  const v = c.value.trim();
  if (c.op === "empty") return `${c.field}[is]:null`;
  if (c.op === "notEmpty") return `${c.field}[is]:notnull`;
  if (v === "") return null;
  const value = type === "number" ? String(Number(v)) : quote(v);
  if (type === "number" && !Number.isFinite(Number(v))) return null;
  switch (c.op) {
    case "contains":
      return `${c.field}[ilike]:${quote(`%${literalLike(v)}%`)}`;
    case "onOrAfter":
      return `${c.field}[gte]:${quote(v)}`;
    case "before":
      return `${c.field}[lt]:${quote(v)}`;
    default:
      return `${c.field}[${c.op}]:${value}`;
  }
}

/** Every complete condition joined by AND, plus a screen's own fixed part; undefined
 * when there is nothing to filter on. */
export function toFilter(conditions: Condition[], fields: FilterField[], fixed?: string): string | undefined {
  const parts = conditions
    .map((c) => {
      const f = fields.find((x) => x.field === c.field);
      return f ? conditionFilter(c, f.type) : null;
    })
    .filter((p): p is string => p !== null);
  if (fixed) parts.unshift(fixed);
  if (parts.length === 0) return undefined;
  return parts.length === 1 ? parts[0] : `and(${parts.join(",")})`;
}

/** The sort after a click on a column: the same column flips, another starts ascending. */
export function nextSort(current: string, field: string): string {
  if (current === field) return `-${field}`;
  return field;
}

/** The column and direction of a sort parameter (`-updatedAt`). */
export function sortOf(sort: string): { field: string; descending: boolean } {
  return sort.startsWith("-") ? { field: sort.slice(1), descending: true } : { field: sort, descending: false };
}

/** One CSV cell: quoted when it must be, and a leading `= + - @` (or tab, CR) defused
 * with a `'` so a spreadsheet shows the text instead of running it as a formula. */
export function csvCell(value: string): string {
  const safe = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(safe) ? `"${safe.replace(/"/g, '""')}"` : safe;
}

/** Rows as CSV text with a header line, CRLF line ends (RFC 4180). */
export function toCsv(header: string[], rows: string[][]): string {
  return [header, ...rows].map((r) => r.map(csvCell).join(",")).join("\r\n") + "\r\n";
}

/** Splits `s` at top-level commas (outside quotes and brackets). */
function splitTop(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === "(" || c === "[") depth++;
    else if (c === ")" || c === "]") depth--;
    else if (c === "," && depth === 0) {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  out.push(s.slice(start));
  return out;
}

function unquote(v: string): string {
  return v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? v.slice(1, -1).replace(/\\(.)/g, "$1") : v;
}

/** The conditions a filter written by `toFilter` was made of, back for the filter bar;
 * null when the filter is not of that shape (written by hand). */
export function conditionsOf(filter: string | null | undefined, fields: FilterField[]): Condition[] | null {
  if (!filter) return [];
  const body = /^and\((.*)\)$/s.exec(filter)?.[1] ?? filter;
  const out: Condition[] = [];
  for (const part of splitTop(body)) {
    const m = /^([\w.]+)\[(\w+)\]:(.*)$/s.exec(part.trim());
    if (!m) return null;
    const [, field = "", op = "", raw = ""] = m;
    const type = fields.find((f) => f.field === field)?.type;
    if (!type) return null;
    if (op === "is") {
      out.push({ field, op: raw === "null" ? "empty" : "notEmpty", value: "" });
      continue;
    }
    const value = unquote(raw);
    if (op === "ilike") {
      const inner = /^%(.*)%$/s.exec(value)?.[1];
      if (inner === undefined) return null;
      out.push({ field, op: "contains", value: inner.replace(/\\(.)/g, "$1") });
    } else if (type === "date" && (op === "gte" || op === "lt")) {
      out.push({ field, op: op === "gte" ? "onOrAfter" : "before", value });
    } else if ((OPERATORS[type] as readonly string[]).includes(op)) {
      out.push({ field, op: op as Operator, value });
    } else return null;
  }
  return out;
}
