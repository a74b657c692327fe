// The filter bar of a list: conditions of field, operator and value, applied together
// (AND). What it applies is written in the API's filter grammar by `toFilter`. The report
// builder edits its conditions with the same rows, applied as they change.
import { useState, type FormEvent } from "react";
import type { User } from "./api";
import { useI18n, type Key } from "./i18n";
import { needsValue, OPERATORS, type Condition, type FilterField, type Operator } from "./listing";

export function blankCondition(field: FilterField): Condition {
  return { field: field.field, op: OPERATORS[field.type][0], value: "" };
}

/** Editable conditions, one row each, with a button adding one. */
export function ConditionRows({
  fields,
  users,
  conditions,
  onChange,
}: {
  fields: FilterField[];
  users: User[];
  conditions: Condition[];
  onChange: (conditions: Condition[]) => void;
}) {
  const { t } = useI18n();
  const first = fields[0];
  if (!first) return null;
  const fieldOf = (name: string) => fields.find((f) => f.field === name) ?? first;
  const update = (i: number, c: Condition) => onChange(conditions.map((x, j) => (j === i ? c : x)));
  return (
    <>
      {conditions.map((c, i) => {
        const f = fieldOf(c.field);
        const n = String(i + 1);
        return (
          <div className="condition" key={i}>
            <select aria-label={t("filterField", { n })} value={c.field} onChange={(e) => update(i, blankCondition(fieldOf(e.target.value)))}>
              {fields.map((x) => (
                <option key={x.field} value={x.field}>
                  {x.label}
                </option>
              ))}
            </select>
            <select aria-label={t("filterOp", { n })} value={c.op} onChange={(e) => update(i, { ...c, op: e.target.value as Operator })}>
              {OPERATORS[f.type].map((op) => (
                <option key={op} value={op}>
                  {t(`op.${op}` as Key)}
                </option>
              ))}
            </select>
            {needsValue(c.op) &&
              (f.type === "choice" || f.type === "user" ? (
                <select aria-label={t("filterValue", { n })} value={c.value} onChange={(e) => update(i, { ...c, value: e.target.value })}>
                  <option value="">—</option>
                  {(f.type === "choice" ? (f.choices ?? []) : users.map((u) => ({ value: u.id, label: u.username }))).map((o) => (
                    <option key={o.value} value={o.value}>
                      {o.label}
                    </option>
                  ))}
                </select>
              ) : (
                <input
                  aria-label={t("filterValue", { n })}
                  type={f.type === "number" ? "number" : f.type === "date" ? "date" : "text"}
                  value={c.value}
                  onChange={(e) => update(i, { ...c, value: e.target.value })}
                />
              ))}
            <button type="button" className="link" aria-label={t("removeCondition", { n })} onClick={() => onChange(conditions.filter((_, j) => j !== i))}>
              ✕
            </button>
          </div>
        );
      })}
      <div className="filter-actions">
        <button type="button" className="secondary" onClick={() => onChange([...conditions, blankCondition(first)])}>
          {t("addFilter")}
        </button>
      </div>
    </>
  );
}

export function FilterBar({
  fields,
  users,
  onApply,
}: {
  fields: FilterField[];
  users: User[];
  onApply: (conditions: Condition[]) => void;
}) {
  const { t } = useI18n();
  const [draft, setDraft] = useState<Condition[]>([]);
  const [applied, setApplied] = useState(0);
  const apply = (e: FormEvent) => {
    e.preventDefault();
    setApplied(draft.length);
    onApply(draft);
  };
  return (
    <form className="filter-bar" aria-label={t("filters")} onSubmit={apply}>
      <ConditionRows fields={fields} users={users} conditions={draft} onChange={setDraft} />
      <div className="filter-actions">
        {(draft.length > 0 || applied > 0) && <button type="submit">{t("applyFilters")}</button>}
        {applied > 0 && (
          <button
            type="button"
            className="link"
            onClick={() => {
              setDraft([]);
              setApplied(0);
              onApply([]);
            }}
          >
            {t("clearFilters")}
          </button>
        )}
      </div>
    </form>
  );
}
