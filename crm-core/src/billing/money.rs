//! Line and document arithmetic in integer minor units, with the one rounding rule:
//! a line's discount and tax are each rounded half away from zero on the line, and
//! every total is the exact sum of the lines' rounded amounts. So the tax by rate, the
//! document's tax and its total always add up to the cent, whatever order they are
//! summed in.

use crate::error::{Errors, Result};
use crate::model::billing::{BillLine, TaxTotal};
use crate::values::Percent;

/// The largest quantity on a line.
pub const MAX_QUANTITY: i64 = 1_000_000_000;
/// The largest unit price: a hundred billion in major units.
pub const MAX_UNIT_PRICE: i64 = 10_000_000_000_000;

/// A document's totals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    /// Tax by rate, lowest rate first.
    pub taxes: Vec<TaxTotal>,
    /// Σ gross.
    pub subtotal: i64,
    /// Σ discount.
    pub discount_total: i64,
    /// Σ tax.
    pub tax_total: i64,
    /// Σ total.
    pub total: i64,
}

/// Fills a line's computed amounts; `None` when they overflow.
pub fn price_line(line: &mut BillLine) -> Option<()> {
    line.gross = line.quantity.checked_mul(line.unit_price)?;
    line.discount = line.discount_percent.of(line.gross)?;
    line.net = line.gross.checked_sub(line.discount)?;
    line.tax = line.tax_percent.of(line.net)?;
    line.total = line.net.checked_add(line.tax)?;
    Some(())
}

/// Checks and prices the lines; errors name `lines.i.field`.
pub fn price_lines(lines: &mut [BillLine], errs: &mut Errors) {
    for (i, l) in lines.iter_mut().enumerate() {
        price_line_at(i, l, errs);
    }
}

/// Checks and prices the line the client wrote at index `i`; errors name
/// `lines.i.field`.
pub fn price_line_at(i: usize, l: &mut BillLine, errs: &mut Errors) {
    let at = |f: &str| format!("lines.{i}.{f}");
    if !(1..=MAX_QUANTITY).contains(&l.quantity) {
        errs.add(at("quantity"), "out_of_range", format!("a quantity lies between 1 and {MAX_QUANTITY}"));
    } else if !(0..=MAX_UNIT_PRICE).contains(&l.unit_price) {
        errs.add(
            at("unitPrice"),
            "out_of_range",
            format!("a unit price lies between 0 and {MAX_UNIT_PRICE} minor units"),
        );
    } else if price_line(l).is_none() {
        errs.add(at("quantity"), "out_of_range", "quantity × unit price is too large");
    }
}

/// The totals of priced lines; `None` on overflow.
pub fn totals(lines: &[BillLine]) -> Option<Totals> {
    let mut t = Totals::default();
    let mut by_rate: Vec<TaxTotal> = Vec::new();
    for l in lines {
        t.subtotal = t.subtotal.checked_add(l.gross)?;
        t.discount_total = t.discount_total.checked_add(l.discount)?;
        t.tax_total = t.tax_total.checked_add(l.tax)?;
        t.total = t.total.checked_add(l.total)?;
        match by_rate.iter_mut().find(|r| r.rate == l.tax_percent) {
            Some(r) => {
                r.net = r.net.checked_add(l.net)?;
                r.tax = r.tax.checked_add(l.tax)?;
            }
            None => by_rate.push(TaxTotal { rate: l.tax_percent, net: l.net, tax: l.tax }),
        }
    }
    by_rate.sort_by_key(|r| r.rate.basis_points());
    t.taxes = by_rate;
    Some(t)
}

/// Prices the lines and totals them, or the errors naming what is wrong.
pub fn priced(lines: &mut [BillLine]) -> Result<Totals> {
    let mut errs = Errors::new();
    price_lines(lines, &mut errs);
    errs.finish()?;
    totals(lines).ok_or_else(|| crate::Error::invalid("lines", "out_of_range", "the document's total is too large"))
}

/// A line of `quantity` × `unit_price` with the given rates, priced.
pub fn line(name: &str, quantity: i64, unit_price: i64, discount: Percent, tax: Percent) -> Option<BillLine> {
    let mut l = BillLine {
        product_id: None,
        sku: None,
        name: name.to_string(),
        description: None,
        quantity,
        unit: None,
        unit_price,
        discount_percent: discount,
        tax_percent: tax,
        gross: 0,
        discount: 0,
        net: 0,
        tax: 0,
        total: 0,
    };
    price_line(&mut l)?;
    Some(l)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pct(bp: u32) -> Percent {
        Percent::from_basis_points(bp).unwrap_or_default()
    }

    #[test]
    fn rounding_is_per_line_half_away_from_zero() {
        // 3 × 0.15 at 10 %: 0.045 of tax rounds to 0.05 (half away from zero).
        let Some(l) = line("x", 3, 15, pct(0), pct(1000)) else { return };
        assert_eq!((l.gross, l.net, l.tax, l.total), (45, 45, 5, 50));
        // 1 × 0.99 with 12.5 % off: 0.12375 → 0.12; tax 20 % of 0.87 = 0.174 → 0.17.
        let Some(l) = line("y", 1, 99, pct(1250), pct(2000)) else { return };
        assert_eq!((l.discount, l.net, l.tax, l.total), (12, 87, 17, 104));
        // Three lines each with a half cent of tax: the document's tax is the sum of
        // the rounded lines (3 cents), not the rounded sum (1.5 → 2 cents).
        let lines: Vec<BillLine> = (0..3).filter_map(|_| line("z", 1, 5, pct(0), pct(1000))).collect();
        let Some(t) = totals(&lines) else { return };
        assert_eq!((t.tax_total, t.total), (3, 18));
        assert_eq!(t.taxes.len(), 1);
    }

    proptest! {
        #[test]
        fn totals_add_up_to_the_cent(
            raw in proptest::collection::vec((1i64..1000, 0i64..1_000_000, 0u32..=10_000, prop::sample::select(vec![0u32, 550, 1000, 2000, 2100])), 1..30)
        ) {
            let lines: Vec<BillLine> = raw.iter().filter_map(|(q, p, d, t)| line("l", *q, *p, pct(*d), pct(*t))).collect();
            prop_assert_eq!(lines.len(), raw.len());
            let t = totals(&lines);
            prop_assert!(t.is_some());
            let t = t.unwrap_or_default();
            prop_assert_eq!(t.subtotal - t.discount_total + t.tax_total, t.total);
            prop_assert_eq!(t.taxes.iter().map(|r| r.tax).sum::<i64>(), t.tax_total);
            prop_assert_eq!(t.taxes.iter().map(|r| r.net).sum::<i64>() + t.tax_total, t.total);
            for l in &lines {
                prop_assert_eq!(l.net + l.tax, l.total);
                // Never more than half a cent from the exact value.
                let exact = (l.net as i128) * (l.tax_percent.basis_points() as i128);
                prop_assert!(((l.tax as i128) * 10_000 - exact).abs() <= 5_000);
            }
        }
    }
}
