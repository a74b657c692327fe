// Pickers of related records by name: a combobox that searches a kind's list (`q`) as
// the user types and keeps the chosen record's id; a list of such records (a deal's
// contacts); and a task's "about" (a contact, company or deal). The ARIA combobox pattern:
// arrows move through the suggestions, Enter takes one, Escape closes them.
import { useEffect, useId, useRef, useState, type KeyboardEvent } from "react";
import { api, type Page } from "./api";
import { useI18n, type Key } from "./i18n";

/** The collections a picker searches. */
export type RefKind = "contacts" | "companies" | "deals";

interface Named {
  id: string;
  name: string;
  email?: string | null;
  domain?: string | null;
}

// Names already read, by id (the same company shows on many screens).
const names = new Map<string, string>();

/** The name of a record, read once. */
export function useRecordName(kind: RefKind, id: string): string | null {
  const [name, setName] = useState<string | null>(() => (id ? (names.get(id) ?? null) : null));
  useEffect(() => {
    if (!id) return setName(null);
    const known = names.get(id);
    if (known) return setName(known);
    let live = true;
    api<Named>("GET", `/api/${kind}/${id}`).then(
      (r) => {
        names.set(id, r.name);
        if (live) setName(r.name);
      },
      () => live && setName(id.slice(0, 8)),
    );
    return () => {
      live = false;
    };
  }, [kind, id]);
  return name;
}

/** Suggestions for what is typed, a moment after the typing stops. */
function useSuggestions(kind: RefKind, text: string, open: boolean) {
  const [found, setFound] = useState<Named[]>([]);
  useEffect(() => {
    if (!open) return;
    let live = true;
    const timer = setTimeout(() => {
      const params = new URLSearchParams({ limit: "8", sort: "name" });
      if (text.trim()) params.set("q", text.trim());
      api<Page<Named>>("GET", `/api/${kind}?${params}`).then(
        (p) => {
          for (const r of p.data) names.set(r.id, r.name);
          if (live) setFound(p.data);
        },
        () => live && setFound([]),
      );
    }, 150);
    return () => {
      live = false;
      clearTimeout(timer);
    };
  }, [kind, text, open]);
  return found;
}

/**
 * One related record, chosen by name. `value` is its id ("" for none); `exclude` leaves
 * some out of the suggestions (those already chosen).
 */
export function RecordPicker({
  label,
  kind,
  value,
  onChange,
  error,
  exclude = [],
  keepText = false,
}: {
  label: string;
  kind: RefKind;
  value: string;
  onChange: (id: string) => void;
  error?: string;
  exclude?: string[];
  /** Empty the box after a choice (a picker that adds to a list). */
  keepText?: boolean;
}) {
  const { t } = useI18n();
  const id = useId();
  const listId = `${id}-list`;
  const errId = `${id}-error`;
  const chosen = useRecordName(kind, value);
  const [text, setText] = useState<string | null>(null);
  const [open, setOpen] = useState(false);
  const [active, setActive] = useState(-1);
  const found = useSuggestions(kind, text ?? "", open).filter((r) => !exclude.includes(r.id));
  const input = useRef<HTMLInputElement>(null);
  const shown = text ?? (keepText ? "" : (chosen ?? ""));
  const choose = (r: Named) => {
    onChange(r.id);
    setText(keepText ? "" : null);
    setOpen(false);
    setActive(-1);
  };
  const onKeyDown = (e: KeyboardEvent<HTMLInputElement>) => {
    if (e.key === "ArrowDown") {
      e.preventDefault();
      setOpen(true);
      setActive((i) => Math.min(i + 1, found.length - 1));
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      setActive((i) => Math.max(i - 1, 0));
    } else if (e.key === "Enter" && open && found[active]) {
      e.preventDefault();
      choose(found[active]);
    } else if (e.key === "Escape" && open) {
      e.preventDefault();
      setOpen(false);
      setText(null);
    }
  };
  return (
    <div className="field picker">
      <label htmlFor={id}>{label}</label>
      <div className="picker-box">
        <input
          id={id}
          ref={input}
          type="text"
          role="combobox"
          autoComplete="off"
          aria-autocomplete="list"
          aria-expanded={open && found.length > 0}
          aria-controls={listId}
          aria-activedescendant={open && found[active] ? `${listId}-${found[active].id}` : undefined}
          aria-invalid={error ? true : undefined}
          aria-describedby={error ? errId : undefined}
          placeholder={t("typeToSearch")}
          value={shown}
          onChange={(e) => {
            setText(e.target.value);
            setOpen(true);
            setActive(-1);
          }}
          onFocus={() => setOpen(true)}
          onBlur={() => {
            // A click on a suggestion lands before the box closes.
            setTimeout(() => {
              setOpen(false);
              setText(null);
            }, 150);
          }}
          onKeyDown={onKeyDown}
        />
        {value && !keepText && (
          <button
            type="button"
            className="link"
            aria-label={t("clearField", { name: label })}
            onClick={() => {
              onChange("");
              setText(null);
              input.current?.focus();
            }}
          >
            ✕
          </button>
        )}
      </div>
      <ul id={listId} role="listbox" aria-label={label} className="suggestions" hidden={!open || found.length === 0}>
        {found.map((r, i) => (
          <li
            key={r.id}
            id={`${listId}-${r.id}`}
            role="option"
            aria-selected={i === active}
            className={i === active ? "active" : undefined}
            onMouseDown={(e) => {
              e.preventDefault();
              choose(r);
            }}
          >
            {r.name}
            {(r.email || r.domain) && <span className="muted"> · {r.email ?? r.domain}</span>}
          </li>
        ))}
      </ul>
      {error && (
        <p id={errId} className="field-error">
          {error}
        </p>
      )}
    </div>
  );
}

function Chip({ kind, id, onRemove }: { kind: RefKind; id: string; onRemove: () => void }) {
  const { t } = useI18n();
  const name = useRecordName(kind, id) ?? "…";
  return (
    <li className="chip">
      {name}
      <button type="button" className="link" aria-label={t("removeItem", { name })} onClick={onRemove}>
        ✕
      </button>
    </li>
  );
}

/** Several related records (a deal's contacts): chips, and a picker that adds one. */
export function RecordsPicker({
  label,
  kind,
  value,
  onChange,
  error,
}: {
  label: string;
  kind: RefKind;
  value: string[];
  onChange: (ids: string[]) => void;
  error?: string;
}) {
  return (
    <div className="records-picker">
      <RecordPicker label={label} kind={kind} value="" keepText exclude={value} error={error} onChange={(id) => id && onChange([...value, id])} />
      {value.length > 0 && (
        <ul className="chips" aria-label={label}>
          {value.map((id) => (
            <Chip key={id} kind={kind} id={id} onRemove={() => onChange(value.filter((v) => v !== id))} />
          ))}
        </ul>
      )}
    </div>
  );
}

const RELATED: { type: "contact" | "company" | "deal"; kind: RefKind }[] = [
  { type: "contact", kind: "contacts" },
  { type: "company", kind: "companies" },
  { type: "deal", kind: "deals" },
];

/** What a task is about: a kind, then the record of that kind. */
export function RelatedPicker({
  label,
  value,
  onChange,
  error,
}: {
  label: string;
  value: { type: string; id: string } | null;
  onChange: (v: { type: string; id: string } | null) => void;
  error?: string;
}) {
  const { t } = useI18n();
  const id = useId();
  const [type, setType] = useState(value?.type ?? "contact");
  const kind = RELATED.find((r) => r.type === (value?.type ?? type))?.kind ?? "contacts";
  return (
    <fieldset className="related">
      <legend>{label}</legend>
      <label htmlFor={id}>{t("relatedKind")}</label>
      <select
        id={id}
        value={value?.type ?? type}
        onChange={(e) => {
          setType(e.target.value);
          onChange(null);
        }}
      >
        {RELATED.map((r) => (
          <option key={r.type} value={r.type}>
            {t(`kind.${r.type}` as Key)}
          </option>
        ))}
      </select>
      <RecordPicker
        key={kind}
        label={t(`kind.${value?.type ?? type}` as Key)}
        kind={kind}
        value={value?.id ?? ""}
        error={error}
        onChange={(picked) => onChange(picked ? { type: value?.type ?? type, id: picked } : null)}
      />
    </fieldset>
  );
}
