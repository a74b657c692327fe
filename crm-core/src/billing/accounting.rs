//! Accounting exports: one UBL 2.1 Invoice or CreditNote document per issued invoice
//! or credit note, with the EN 16931 core fields (the number, dates, currency, seller
//! and buyer with their VAT ids, payment means and terms, tax by category and rate,
//! document totals, lines with their allowances), and a double-entry journal as CSV
//! (sales, credit notes, payments and refunds).

use std::fmt::Write as _;

use chrono::NaiveDate;

use crate::model::billing::{DocumentType, Invoice, InvoiceStatus, Party, Payment, PaymentKind};
use crate::values::{Currency, Percent};

/// An amount of minor units as a decimal of its currency (`5247` EUR → `52.47`).
pub fn decimal(minor: i64, currency: &Currency) -> String {
    let exp = currency.exponent();
    if exp == 0 {
        return minor.to_string();
    }
    let div = 10i64.pow(exp);
    let sign = if minor < 0 { "-" } else { "" };
    let a = minor.unsigned_abs();
    let d = div.unsigned_abs();
    format!("{sign}{}.{:0width$}", a / d, a % d, width = exp as usize)
}

fn percent(p: Percent) -> String {
    let bp = p.basis_points();
    if bp.is_multiple_of(100) {
        (bp / 100).to_string()
    } else {
        format!("{}.{:02}", bp / 100, bp % 100)
    }
}

/// Text made safe for XML and HTML (`& < > " '`; characters XML cannot hold dropped).
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Characters XML 1.0 cannot hold.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// EN 16931's VAT category of a rate: standard (`S`) or zero rated (`Z`).
fn category(rate: Percent) -> &'static str {
    if rate.basis_points() == 0 {
        "Z"
    } else {
        "S"
    }
}

fn tax_category(out: &mut String, tag: &str, rate: Percent) {
    let _ = write!(
        out,
        "<cac:{tag}><cbc:ID>{}</cbc:ID><cbc:Percent>{}</cbc:Percent><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:{tag}>",
        category(rate),
        percent(rate)
    );
}

fn party(out: &mut String, role: &str, p: &Party) {
    let _ = write!(out, "<cac:{role}><cac:Party>");
    if !p.name.is_empty() {
        let _ = write!(out, "<cac:PartyName><cbc:Name>{}</cbc:Name></cac:PartyName>", esc(&p.name));
    }
    // EN 16931 has three address lines: street, additional street, and one more.
    out.push_str("<cac:PostalAddress>");
    let mut lines = p.address_lines.iter();
    if let Some(l) = lines.next() {
        let _ = write!(out, "<cbc:StreetName>{}</cbc:StreetName>", esc(l));
    }
    if let Some(l) = lines.next() {
        let _ = write!(out, "<cbc:AdditionalStreetName>{}</cbc:AdditionalStreetName>", esc(l));
    }
    let rest: Vec<&str> = lines.map(String::as_str).collect();
    if !rest.is_empty() {
        let _ = write!(out, "<cac:AddressLine><cbc:Line>{}</cbc:Line></cac:AddressLine>", esc(&rest.join(", ")));
    }
    if let Some(c) = p.country.as_deref().filter(|c| c.len() == 2) {
        let _ = write!(
            out,
            "<cac:Country><cbc:IdentificationCode>{}</cbc:IdentificationCode></cac:Country>",
            esc(&c.to_ascii_uppercase())
        );
    }
    out.push_str("</cac:PostalAddress>");
    if let Some(vat) = &p.tax_id {
        let _ = write!(
            out,
            "<cac:PartyTaxScheme><cbc:CompanyID>{}</cbc:CompanyID><cac:TaxScheme><cbc:ID>VAT</cbc:ID></cac:TaxScheme></cac:PartyTaxScheme>",
            esc(vat)
        );
    }
    let _ = write!(out, "<cac:PartyLegalEntity><cbc:RegistrationName>{}</cbc:RegistrationName>", esc(&p.name));
    if let Some(r) = &p.registration {
        let _ = write!(out, "<cbc:CompanyID>{}</cbc:CompanyID>", esc(r));
    }
    out.push_str("</cac:PartyLegalEntity>");
    if p.contact_name.is_some() || p.phone.is_some() || p.email.is_some() {
        out.push_str("<cac:Contact>");
        if let Some(n) = &p.contact_name {
            let _ = write!(out, "<cbc:Name>{}</cbc:Name>", esc(n));
        }
        if let Some(t) = &p.phone {
            let _ = write!(out, "<cbc:Telephone>{}</cbc:Telephone>", esc(t));
        }
        if let Some(e) = &p.email {
            let _ = write!(out, "<cbc:ElectronicMail>{}</cbc:ElectronicMail>", esc(e));
        }
        out.push_str("</cac:Contact>");
    }
    let _ = write!(out, "</cac:Party></cac:{role}>");
}

/// The UBL 2.1 document of an issued invoice (`Invoice`, type code 380) or credit note
/// (`CreditNote`, 381). `credited` is the number of the invoice a credit note reverses.
pub fn ubl(inv: &Invoice, credited: Option<&str>) -> String {
    let cur = &inv.currency;
    let code = cur.code();
    let amt = |m: i64| format!("currencyID=\"{code}\">{}", decimal(m, cur));
    let credit = inv.doc_type == DocumentType::CreditNote;
    let root = if credit { "CreditNote" } else { "Invoice" };
    let mut x = String::with_capacity(4096);
    let _ = write!(
        x,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<{root} xmlns=\"urn:oasis:names:specification:ubl:schema:xsd:{root}-2\" \
xmlns:cac=\"urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2\" \
xmlns:cbc=\"urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2\">"
    );
    x.push_str(
        "<cbc:UBLVersionID>2.1</cbc:UBLVersionID><cbc:CustomizationID>urn:cen.eu:en16931:2017</cbc:CustomizationID>",
    );
    let _ = write!(x, "<cbc:ID>{}</cbc:ID>", esc(inv.number.as_deref().unwrap_or("DRAFT")));
    let issue = inv.issue_date.unwrap_or_else(|| inv.created_at.date_naive());
    let _ = write!(x, "<cbc:IssueDate>{issue}</cbc:IssueDate>");
    if credit {
        x.push_str("<cbc:CreditNoteTypeCode>381</cbc:CreditNoteTypeCode>");
    } else {
        if let Some(due) = inv.due_date {
            let _ = write!(x, "<cbc:DueDate>{due}</cbc:DueDate>");
        }
        x.push_str("<cbc:InvoiceTypeCode>380</cbc:InvoiceTypeCode>");
    }
    for note in [inv.notes.as_deref(), inv.reason.as_deref()].into_iter().flatten() {
        let _ = write!(x, "<cbc:Note>{}</cbc:Note>", esc(note));
    }
    let _ = write!(x, "<cbc:DocumentCurrencyCode>{code}</cbc:DocumentCurrencyCode>");
    if let (Some(s), Some(e)) = (inv.period_start, inv.period_end) {
        let _ = write!(
            x,
            "<cac:InvoicePeriod><cbc:StartDate>{s}</cbc:StartDate><cbc:EndDate>{e}</cbc:EndDate></cac:InvoicePeriod>"
        );
    }
    if let Some(n) = credited {
        let _ = write!(x, "<cac:BillingReference><cac:InvoiceDocumentReference><cbc:ID>{}</cbc:ID></cac:InvoiceDocumentReference></cac:BillingReference>", esc(n));
    }
    party(&mut x, "AccountingSupplierParty", &inv.seller);
    party(&mut x, "AccountingCustomerParty", &inv.customer);
    if !credit {
        // A credit transfer (30) names the account paid into; without an IBAN in the
        // instructions the means stays "not defined" (1).
        let iban = inv.payment_instructions.as_deref().and_then(find_iban);
        let code = if iban.is_some() { "30" } else { "1" };
        let _ = write!(
            x,
            "<cac:PaymentMeans><cbc:PaymentMeansCode>{code}</cbc:PaymentMeansCode><cbc:PaymentID>{}</cbc:PaymentID>",
            esc(inv.number.as_deref().unwrap_or(""))
        );
        if let Some(iban) = iban {
            let _ = write!(x, "<cac:PayeeFinancialAccount><cbc:ID>{iban}</cbc:ID></cac:PayeeFinancialAccount>");
        }
        x.push_str("</cac:PaymentMeans>");
        let mut terms = inv.payment_terms.as_str().replace('_', " ");
        if let Some(i) = &inv.payment_instructions {
            terms = format!("{terms}. {i}");
        }
        let _ = write!(x, "<cac:PaymentTerms><cbc:Note>{}</cbc:Note></cac:PaymentTerms>", esc(&terms));
    }
    let _ = write!(x, "<cac:TaxTotal><cbc:TaxAmount {}</cbc:TaxAmount>", amt(inv.tax_total));
    for t in &inv.taxes {
        let _ = write!(
            x,
            "<cac:TaxSubtotal><cbc:TaxableAmount {}</cbc:TaxableAmount><cbc:TaxAmount {}</cbc:TaxAmount>",
            amt(t.net),
            amt(t.tax)
        );
        tax_category(&mut x, "TaxCategory", t.rate);
        x.push_str("</cac:TaxSubtotal>");
    }
    x.push_str("</cac:TaxTotal>");
    let net = inv.subtotal - inv.discount_total;
    let _ = write!(
        x,
        "<cac:LegalMonetaryTotal><cbc:LineExtensionAmount {}</cbc:LineExtensionAmount><cbc:TaxExclusiveAmount {}</cbc:TaxExclusiveAmount>\
<cbc:TaxInclusiveAmount {}</cbc:TaxInclusiveAmount>",
        amt(net),
        amt(net),
        amt(inv.total)
    );
    if !credit && inv.amount_paid + inv.amount_credited != 0 {
        let _ = write!(x, "<cbc:PrepaidAmount {}</cbc:PrepaidAmount>", amt(inv.amount_paid + inv.amount_credited));
    }
    let payable = if credit { inv.total } else { inv.balance };
    let _ = write!(x, "<cbc:PayableAmount {}</cbc:PayableAmount></cac:LegalMonetaryTotal>", amt(payable));
    let (line_tag, qty_tag) =
        if credit { ("CreditNoteLine", "CreditedQuantity") } else { ("InvoiceLine", "InvoicedQuantity") };
    for (i, l) in inv.lines.iter().enumerate() {
        let _ = write!(
            x,
            "<cac:{line_tag}><cbc:ID>{}</cbc:ID><cbc:{qty_tag} unitCode=\"C62\">{}</cbc:{qty_tag}><cbc:LineExtensionAmount {}</cbc:LineExtensionAmount>",
            i + 1,
            l.quantity,
            amt(l.net)
        );
        if l.discount != 0 {
            let _ = write!(
                x,
                "<cac:AllowanceCharge><cbc:ChargeIndicator>false</cbc:ChargeIndicator><cbc:AllowanceChargeReason>Discount</cbc:AllowanceChargeReason>\
<cbc:MultiplierFactorNumeric>{}</cbc:MultiplierFactorNumeric><cbc:Amount {}</cbc:Amount><cbc:BaseAmount {}</cbc:BaseAmount></cac:AllowanceCharge>",
                percent(l.discount_percent),
                amt(l.discount),
                amt(l.gross)
            );
        }
        x.push_str("<cac:Item>");
        if let Some(d) = &l.description {
            let _ = write!(x, "<cbc:Description>{}</cbc:Description>", esc(d));
        }
        let _ = write!(x, "<cbc:Name>{}</cbc:Name>", esc(&l.name));
        if let Some(sku) = &l.sku {
            let _ = write!(
                x,
                "<cac:SellersItemIdentification><cbc:ID>{}</cbc:ID></cac:SellersItemIdentification>",
                esc(sku)
            );
        }
        tax_category(&mut x, "ClassifiedTaxCategory", l.tax_percent);
        let _ = write!(
            x,
            "</cac:Item><cac:Price><cbc:PriceAmount {}</cbc:PriceAmount></cac:Price></cac:{line_tag}>",
            amt(l.unit_price)
        );
    }
    let _ = writeln!(x, "</{root}>");
    x
}

/// The first IBAN in a text (`FR76 3000 6000 0112 3456 7890 189` → without spaces), if
/// its ISO 13616 check digits hold.
pub fn find_iban(text: &str) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    for start in 0..chars.len().saturating_sub(1) {
        if !(chars[start].is_ascii_uppercase() && chars[start + 1].is_ascii_uppercase()) {
            continue;
        }
        if start > 0 && chars[start - 1].is_ascii_alphanumeric() {
            continue;
        }
        let mut iban = String::new();
        for c in &chars[start..] {
            if c.is_ascii_alphanumeric() {
                iban.push(c.to_ascii_uppercase());
            } else if *c != ' ' {
                break;
            }
            if iban.len() == 34 {
                break;
            }
        }
        // Shrink from the right until the check digits hold (the text may go on).
        while iban.len() >= 15 {
            if iban_valid(&iban) {
                return Some(iban);
            }
            iban.pop();
        }
    }
    None
}

fn iban_valid(iban: &str) -> bool {
    let b = iban.as_bytes();
    if b.len() < 15 || !b[2].is_ascii_digit() || !b[3].is_ascii_digit() {
        return false;
    }
    let mut rem: u32 = 0;
    for c in iban[4..].chars().chain(iban[..4].chars()) {
        let Some(v) = c.to_digit(36) else { return false };
        rem = if v >= 10 { (rem * 100 + v) % 97 } else { (rem * 10 + v) % 97 };
    }
    rem == 1
}

/// A CSV cell: quoted when needed; a leading `=`, `+`, `-`, `@`, tab or CR is
/// neutralised with a `'` so that no spreadsheet runs it as a formula.
fn cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) && s.parse::<f64>().is_err() {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// One journal entry line.
struct Entry<'a> {
    date: NaiveDate,
    journal: &'a str,
    document: &'a str,
    account: String,
    label: String,
    debit: i64,
    credit: i64,
    currency: &'a Currency,
}

/// The double-entry journal of issued invoices and credit notes (sales: receivable
/// debited, revenue and VAT by rate credited; credit notes the reverse) and of
/// payments and refunds (bank against receivable), by date. Each entry balances.
pub fn journal_csv(invoices: &[Invoice], payments: &[(Payment, String)]) -> String {
    let mut lines: Vec<Entry<'_>> = Vec::new();
    for inv in invoices.iter().filter(|i| i.status != InvoiceStatus::Draft && i.status != InvoiceStatus::Void) {
        let Some(number) = inv.number.as_deref() else { continue };
        let date = inv.issue_date.unwrap_or_else(|| inv.created_at.date_naive());
        let credit = inv.doc_type == DocumentType::CreditNote;
        let d = |x: i64| if credit { (0, x) } else { (x, 0) };
        let rd = |x: i64| if credit { (x, 0) } else { (0, x) };
        let journal = if credit { "CREDIT_NOTES" } else { "SALES" };
        let (dd, dc) = d(inv.total);
        lines.push(Entry {
            date,
            journal,
            document: number,
            account: "411 Receivable".into(),
            label: inv.customer.name.clone(),
            debit: dd,
            credit: dc,
            currency: &inv.currency,
        });
        for t in &inv.taxes {
            let (a, b) = rd(t.net);
            lines.push(Entry {
                date,
                journal,
                document: number,
                account: format!("706 Sales {}%", percent(t.rate)),
                label: inv.customer.name.clone(),
                debit: a,
                credit: b,
                currency: &inv.currency,
            });
            if t.tax != 0 {
                let (a, b) = rd(t.tax);
                lines.push(Entry {
                    date,
                    journal,
                    document: number,
                    account: format!("4457 VAT {}%", percent(t.rate)),
                    label: inv.customer.name.clone(),
                    debit: a,
                    credit: b,
                    currency: &inv.currency,
                });
            }
        }
    }
    for (p, number) in payments {
        let date = p.received_at.date_naive();
        let refund = p.kind == PaymentKind::Refund;
        let label = format!("{} {}", p.gateway, p.reference.as_deref().unwrap_or(""));
        let (bank_d, bank_c) = if refund { (0, p.amount) } else { (p.amount, 0) };
        lines.push(Entry {
            date,
            journal: "BANK",
            document: number,
            account: "512 Bank".into(),
            label: label.clone(),
            debit: bank_d,
            credit: bank_c,
            currency: &p.currency,
        });
        lines.push(Entry {
            date,
            journal: "BANK",
            document: number,
            account: "411 Receivable".into(),
            label,
            debit: bank_c,
            credit: bank_d,
            currency: &p.currency,
        });
    }
    lines.sort_by(|a, b| (a.date, a.journal, a.document).cmp(&(b.date, b.journal, b.document)));
    let mut out = String::from("date,journal,document,account,label,debit,credit,currency\n");
    for e in lines {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{}",
            e.date,
            cell(e.journal),
            cell(e.document),
            cell(&e.account),
            cell(e.label.trim()),
            decimal(e.debit, e.currency),
            decimal(e.credit, e.currency),
            e.currency.code()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_cells_and_escapes() -> crate::Result<()> {
        let eur = Currency::parse("EUR")?;
        let jpy = Currency::parse("JPY")?;
        assert_eq!(
            (decimal(5247, &eur), decimal(-5, &eur), decimal(1200, &jpy)),
            ("52.47".into(), "-0.05".into(), "1200".into())
        );
        assert_eq!(cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(cell("-12.50"), "-12.50");
        assert_eq!(esc("A & B <c>"), "A &amp; B &lt;c&gt;");
        assert_eq!(
            find_iban("IBAN FR76 3000 6000 0112 3456 7890 189, BIC AGRIFRPP").as_deref(),
            Some("FR7630006000011234567890189")
        );
        assert_eq!(find_iban("Pay to GB82 WEST 1234 5698 7654 32 please").as_deref(), Some("GB82WEST12345698765432"));
        assert_eq!(find_iban("FR76 3000 6000 0112 3456 7890 188"), None, "bad check digits");
        assert_eq!(find_iban("cheque to Northwind"), None);
        Ok(())
    }
}
