// The report builder's state and the `ReportSpec` it writes (the same document
// `POST /api/reports/run` and saved reports take), and back: a saved spec opens in the
// builder as it was built.
import type { components } from "./openapi";
import { conditionsOf, toFilter, type Condition, type FilterField } from "./listing";

type Schemas = components["schemas"];
export type ReportSpec = Schemas["ReportSpec"];
export type AggFn = Schemas["AggFn"];
export type Bucket = Schemas["Bucket"];

/** A field of a source table, as `GET /api/reports/catalog` lists it. */
export type CatalogField = Schemas["CatalogField"];
export type CatalogSource = Schemas["CatalogSource"];

export const AGGREGATES: AggFn[] = ["count", "count_distinct", "sum", "avg", "min", "max", "median"];
export const BUCKETS: Bucket[] = ["day", "week", "month", "quarter", "year"];

export interface Draft {
  source: string;
  joins: string[];
  groupBy: { field: string; bucket?: Bucket }[];
  values: { fn: AggFn; field?: string }[];
  conditions: Condition[];
  /** A saved filter the filter bar cannot show (written by hand): kept, ANDed. */
  rawFilter?: string;
  /** An output column, or "" for the default order. */
  sort: string;
  descending: boolean;
  limit: number;
}

export function emptyDraft(source = "deals"): Draft {
  return { source, joins: [], groupBy: [], values: [], conditions: [], sort: "", descending: true, limit: 100 };
}

/** The fields a draft may use: its source's, and each joined table's as `table.field`. */
export function fieldsOf(catalog: CatalogSource[], d: Pick<Draft, "source" | "joins">): CatalogField[] {
  const own = catalog.find((s) => s.name === d.source)?.fields ?? [];
  const joined = d.joins.flatMap((j) => (catalog.find((s) => s.name === j)?.fields ?? []).map((f) => ({ ...f, name: `${j}.${f.name}` })));
  return [...own, ...joined].filter((f) => f.type !== "json");
}

/** Does a field take a time bucket? */
export function isTime(f: CatalogField | undefined): boolean {
  return f?.type === "date" || f?.type === "timestamp";
}

/** What dropping a field on the values gives: the sum of a number, else a count of values. */
export function defaultValue(f: CatalogField): { fn: AggFn; field: string } {
  return { fn: f.type === "integer" ? "sum" : "count", field: f.name };
}

/** The filter bar's fields for a draft's fields (lists are not filterable here). */
export function filterFieldsOf(fields: CatalogField[]): FilterField[] {
  return fields.flatMap((f): FilterField[] => {
    if (f.type === "list" || f.type === "json") return [];
    if (f.choices && f.choices.length > 0) return [{ field: f.name, label: f.name, type: "choice", choices: f.choices.map((c) => ({ value: c, label: c })) }];
    if (f.type === "boolean") return [{ field: f.name, label: f.name, type: "choice", choices: [{ value: "true", label: "true" }, { value: "false", label: "false" }] }];
    if (f.type === "integer") return [{ field: f.name, label: f.name, type: "number" }];
    if (isTime(f)) return [{ field: f.name, label: f.name, type: "date" }];
    return [{ field: f.name, label: f.name, type: "text" }];
  });
}

/** The spec a draft stands for; null while it has nothing to show (no group and no value). */
export function specOf(d: Draft, fields: CatalogField[], title?: string): ReportSpec | null {
  if (d.groupBy.length === 0 && d.values.length === 0) return null;
  const filter = toFilter(d.conditions, filterFieldsOf(fields), d.rawFilter);
  return {
    ...(title ? { title } : {}),
    source: d.source,
    ...(d.joins.length > 0 ? { join: d.joins } : {}),
    ...(filter ? { filter } : {}),
    groupBy: d.groupBy.map((g) => (g.bucket ? { field: g.field, bucket: g.bucket } : g.field)),
    // Groups without values count their rows.
    aggregates: d.values.length > 0 ? d.values.map((v) => (v.field ? { fn: v.fn, field: v.field } : { fn: v.fn })) : [{ fn: "count" }],
    ...(d.sort ? { sort: `${d.sort}[${d.descending ? "desc" : "asc"}]` } : {}),
    limit: d.limit,
  };
}

/** A saved spec back in the builder: its filter as the filter bar's conditions when it
 * was written by the builder, else kept as it is. */
export function draftOf(spec: ReportSpec, catalog: CatalogSource[]): Draft {
  const fields = fieldsOf(catalog, { source: spec.source, joins: spec.join ?? [] });
  const conditions = conditionsOf(spec.filter, filterFieldsOf(fields));
  const sort = /^(.+?)(?:\[(asc|desc)\])?$/.exec(spec.sort ?? "");
  return {
    source: spec.source,
    joins: spec.join ?? [],
    groupBy: (spec.groupBy ?? []).map((g) => (typeof g === "string" ? { field: g } : { field: g.field, ...(g.bucket ? { bucket: g.bucket } : {}) })),
    values: (spec.aggregates ?? []).map((a) => (a.field ? { fn: a.fn, field: a.field } : { fn: a.fn })),
    conditions: conditions ?? [],
    ...(conditions === null && spec.filter ? { rawFilter: spec.filter } : {}),
    sort: spec.sort ? (sort?.[1] ?? "").replace(/^-/, "") : "",
    descending: spec.sort ? spec.sort.startsWith("-") || sort?.[2] === "desc" : true,
    limit: spec.limit ?? 100,
  };
}
