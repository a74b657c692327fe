// A dashboard's layout: its cards in order, each a standard report or a saved report,
// one or two columns wide; kept in the user's settings (`dashboard`). And the filters
// every card runs with.

/** One card of a layout: a standard report's name or a saved report's id. */
export interface CardSpec {
  report: string;
  width: number;
}

export const STANDARD = [
  "r1_pipeline_by_stage",
  "r2_forecast_by_month",
  "r3_win_rate_by_owner",
  "r4_stage_funnel",
  "r5_lead_conversion",
  "r6_top_companies_by_revenue",
  "r7_contact_engagement",
  "r8_customer_acquisition",
] as const;

export const DEFAULT_LAYOUT: CardSpec[] = STANDARD.map((report) => ({ report, width: 1 }));

/** Cards as the API writes them (`width` may be left out: one column) as a layout. */
export const withWidths = (cards: readonly { report: string; width?: number }[]): CardSpec[] =>
  cards.map((c) => ({ report: c.report, width: c.width ?? 1 }));

export const isStandard = (r: string): boolean => (STANDARD as readonly string[]).includes(r);

/** A layout with one card moved from `from` to `to`. */
export function moved(cards: CardSpec[], from: number, to: number): CardSpec[] {
  if (from === to || from < 0 || to < 0 || from >= cards.length || to >= cards.length) return cards;
  const next = [...cards];
  const [card] = next.splice(from, 1);
  if (card) next.splice(to, 0, card);
  return next;
}

/** The dashboard's filters as a query string ("" when none): the date range (`from`,
 * `to`: days) and the owners (`owners`: a comma-separated list of user ids; null:
 * everyone the caller may see). Every card runs with the same. */
export function filterQuery(from: string, to: string, owners: string | null): string {
  const params = new URLSearchParams();
  if (from) params.set("from", from);
  if (to) params.set("to", to);
  if (owners !== null) params.set("ownerId", owners);
  return params.size > 0 ? `?${params}` : "";
}
