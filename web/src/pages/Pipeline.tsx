// The pipeline board: deals by stage, dragged between stages (by pointer, or by keyboard
// from the card's handle: Space, the arrow keys, Space; or moved with the card's stage
// picker) with an optimistic move undone when the server refuses;
// a selected deal shows its stage history.
import { DndContext, useDraggable, useDroppable, type DragEndEvent } from "@dnd-kit/core";
import { useCallback, useEffect, useState, type ReactNode } from "react";
import { api, DEAL_STAGES, money, type Deal, type DealStage, type DealStageChange, type Page } from "../api";
import { useDragSensors, useDragWords } from "../dnd";
import { useI18n, type Key } from "../i18n";

function Card({ deal, selected, onSelect, onMove }: { deal: Deal; selected: boolean; onSelect: () => void; onMove: (stage: DealStage) => void }) {
  const { t, lang } = useI18n();
  const { attributes, listeners, setNodeRef, transform, isDragging } = useDraggable({ id: deal.id });
  const style = transform ? { transform: `translate(${transform.x}px, ${transform.y}px)` } : undefined;
  return (
    <li ref={setNodeRef} style={style} className={`card${isDragging ? " dragging" : ""}${selected ? " selected" : ""}`} data-deal={deal.name}>
      <div className="card-head">
        <span className="handle" {...listeners} {...attributes} aria-label={t("drag", { name: deal.name })}>
          ⠿
        </span>
        <button type="button" className="link" onClick={onSelect} aria-pressed={selected}>
          {deal.name}
        </button>
        {deal.amount != null && <span className="amount">{money(deal.amount, deal.currency, lang)}</span>}
      </div>
      <select aria-label={t("moveTo", { name: deal.name })} value={deal.stage} onChange={(e) => onMove(e.target.value as DealStage)}>
        {DEAL_STAGES.map((s) => (
          <option key={s} value={s}>
            {t(`stage.${s}` as Key)}
          </option>
        ))}
      </select>
    </li>
  );
}

function Column({ stage, children, total }: { stage: string; children: ReactNode; total: string }) {
  const { t } = useI18n();
  const { setNodeRef, isOver } = useDroppable({ id: stage });
  const title = t(`stage.${stage}` as Key);
  return (
    <section ref={setNodeRef} className={`column${isOver ? " over" : ""}`} aria-label={title} data-stage={stage}>
      <h2>{title}</h2>
      <p className="total">{total}</p>
      <ul>{children}</ul>
    </section>
  );
}

export function Pipeline() {
  const { t, lang } = useI18n();
  const [deals, setDeals] = useState<Deal[] | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [selected, setSelected] = useState<string | null>(null);
  const [history, setHistory] = useState<DealStageChange[]>([]);
  const sensors = useDragSensors(5);
  const nameOf = useCallback(
    (id: string | number) => (DEAL_STAGES.includes(id as DealStage) ? t(`stage.${id}` as Key) : (deals?.find((d) => d.id === id)?.name ?? String(id))),
    [deals, t],
  );
  const accessibility = useDragWords(nameOf);
  useEffect(() => {
    api<Page<Deal>>("GET", "/api/deals?limit=200&sort=-updatedAt").then((p) => setDeals(p.data), setError);
  }, []);
  const loadHistory = useCallback((id: string) => {
    api<{ data: DealStageChange[] }>("GET", `/api/deals/${id}/history`).then((h) => setHistory(h.data), setError);
  }, []);
  useEffect(() => {
    if (selected) loadHistory(selected);
  }, [selected, loadHistory]);

  const move = async (id: string, stage: DealStage) => {
    const before = deals?.find((d) => d.id === id);
    if (!deals || !before || before.stage === stage) return;
    setError(null);
    // Optimistic: the card moves now; the server's answer replaces it, a refusal undoes it.
    setDeals(deals.map((d) => (d.id === id ? { ...d, stage } : d)));
    try {
      const saved = await api<Deal>("PATCH", `/api/deals/${id}`, { stage, version: before.version });
      setDeals((ds) => ds?.map((d) => (d.id === id ? saved : d)) ?? null);
      if (selected === id) loadHistory(id);
    } catch (e) {
      setDeals((ds) => ds?.map((d) => (d.id === id ? before : d)) ?? null);
      setError(e);
    }
  };
  const onDragEnd = (e: DragEndEvent) => {
    const to = DEAL_STAGES.find((s) => s === e.over?.id);
    if (to) void move(String(e.active.id), to);
  };
  const totals = (stage: string) => {
    const by = new Map<string, number>();
    for (const d of deals ?? []) if (d.stage === stage && d.amount != null) by.set(d.currency, (by.get(d.currency) ?? 0) + d.amount);
    return [...by].map(([c, v]) => money(v, c, lang)).join(" · ") || "—";
  };
  const chosen = deals?.find((d) => d.id === selected);
  const when = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short" });
  return (
    <section aria-labelledby="pipeline-title">
      <h1 id="pipeline-title">{t("pipeline")}</h1>
      {error != null && (
        <div role="alert" className="alert">
          <p>{t("moveFailed", { detail: error instanceof Error ? error.message : String(error) })}</p>
        </div>
      )}
      {!deals && !error && <p role="status">{t("loading")}</p>}
      {deals && (
        <DndContext sensors={sensors} onDragEnd={onDragEnd} accessibility={accessibility}>
          <div className="board">
            {DEAL_STAGES.map((stage) => (
              <Column key={stage} stage={stage} total={totals(stage)}>
                {deals
                  .filter((d) => d.stage === stage)
                  .map((d) => (
                    <Card key={d.id} deal={d} selected={d.id === selected} onSelect={() => setSelected(d.id)} onMove={(s) => void move(d.id, s)} />
                  ))}
              </Column>
            ))}
          </div>
        </DndContext>
      )}
      {chosen && (
        <section aria-labelledby="history-title" className="history">
          <h2 id="history-title">{t("history", { name: chosen.name })}</h2>
          <ol>
            {history.map((h) => (
              <li key={h.id}>
                <time dateTime={h.changedAt}>{when.format(new Date(h.changedAt))}</time>{" "}
                {h.fromStage ? `${t(`stage.${h.fromStage}` as Key)} → ` : ""}
                {t(`stage.${h.toStage}` as Key)}
              </li>
            ))}
          </ol>
        </section>
      )}
    </section>
  );
}
