//! Saved payment methods and off-session charges: a company's customer at the gateway
//! ([`PaymentProfile`], its ids sealed at rest), the signed card link a manager sends
//! the customer (`/card/<token>`, valid a week) whose page saves a card through the
//! gateway's own form (Stripe's SetupIntent, confirmed by Stripe.js; the server reads
//! the result back from the gateway, never from the browser), and the charging of
//! invoices to it — by the payments loop for subscriptions with `autoCharge`, or by a
//! manager on demand.
//!
//! A charge is claimed by one server with a versioned write (`due` → `charging`) before
//! the gateway is called, and the call carries an idempotency key of the invoice and
//! the attempt: a server that stops halfway leaves the claim, which another takes up
//! after [`STALE_CHARGE`] with the same key, so the customer is charged once.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use super::gateway::{self, PaymentGateway};
use super::{conflict, crypt, open, BillingService, InvoiceView};
use crate::error::{Error, Result};
use crate::model::billing::{ChargeState, DocumentType, Invoice, PaymentMethod, PaymentProfile};
use crate::model::company::Company;
use crate::policy::{Action, Actor};
use crate::query::{Cmp, Direction, Filter, Predicate, SortKey, StoreQuery};
use crate::schema::{to_row, EntityKind, Value};
use crate::store::{Changeset, StoreExt, Write};

const CARD_PURPOSE: &str = "billing.card";

/// How long a card link works.
pub const CARD_LINK_DAYS: i64 = 7;

/// A claimed charge whose server went quiet this long is taken up by another (with the
/// same idempotency key: the gateway answers the first charge if there was one).
pub const STALE_CHARGE: Duration = Duration::minutes(10);

/// A company's saved payment method, as people see it (the gateway's ids stay sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct SavedPaymentMethod {
    /// `stripe`.
    pub gateway: String,
    /// `card`, `sepa_debit`, `us_bank_account`, …
    pub kind: String,
    /// `visa •••• 4242`.
    pub label: String,
    /// When the customer saved it.
    pub saved_at: DateTime<Utc>,
}

/// A link for a customer to save a payment method.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CardLink {
    /// `/card/<token>`; the server puts its public address in front.
    pub path: String,
    /// When it stops working.
    pub expires_at: DateTime<Utc>,
}

/// What the card page's script needs to show the gateway's form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct CardSetup {
    /// `stripe`.
    pub gateway: String,
    /// The setup's id (`seti_…`), sent back once the browser confirmed it.
    pub setup_intent_id: String,
    /// For Stripe.js `confirmCardSetup`.
    pub client_secret: Option<String>,
    /// The publishable key.
    pub public_key: Option<String>,
}

/// What a run of the charging pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct ChargeReport {
    /// Taken by the gateway.
    pub charged: usize,
    /// Declined, or nothing to charge them to.
    pub failed: usize,
}

/// The payment method a gateway's method kind records as.
pub(crate) fn method_of(kind: Option<&str>) -> PaymentMethod {
    match kind {
        Some("sepa_debit") => PaymentMethod::SepaDebit,
        Some("us_bank_account") => PaymentMethod::AchDebit,
        _ => PaymentMethod::Card,
    }
}

impl BillingService<'_> {
    fn profile_id(company: Uuid, gateway: &str) -> Uuid {
        crate::ids::derived_id(&[b"billing.payment_profile:", company.as_bytes(), gateway.as_bytes()])
    }

    pub(crate) fn profile_row(&self, p: &PaymentProfile) -> Result<crate::schema::Row> {
        let keys = self.crm.billing_keys();
        let mut s = p.clone();
        s.customer_ref = keys.seal(&crypt::aad("payment_profiles", "customer_ref", p.id), &p.customer_ref)?;
        s.method_ref = keys.seal_opt(&crypt::aad("payment_profiles", "method_ref", p.id), &p.method_ref)?;
        to_row(&s)
    }

    /// A profile as stored, its gateway ids opened.
    pub fn opened_profile(&self, mut p: PaymentProfile) -> Result<PaymentProfile> {
        let keys = self.crm.billing_keys();
        p.customer_ref = keys.open(&crypt::aad("payment_profiles", "customer_ref", p.id), &p.customer_ref)?;
        p.method_ref = keys.open_opt(&crypt::aad("payment_profiles", "method_ref", p.id), &p.method_ref)?;
        Ok(p)
    }

    async fn profile(&self, company: Uuid, gateway: &str) -> Result<Option<PaymentProfile>> {
        let id = Self::profile_id(company, gateway);
        self.crm.store().get_as::<PaymentProfile>(id).await?.map(|p| self.opened_profile(p)).transpose()
    }

    /// The company, if the actor may `action` billing records of it.
    async fn billed_company(&self, actor: &Actor, id: Uuid, action: Action) -> Result<Company> {
        self.require(actor, action)?;
        let company = self
            .crm
            .store()
            .get_as::<Company>(id)
            .await?
            .filter(|c| !c.meta.is_deleted())
            .ok_or(Error::NotFound { entity: "company" })?;
        let owner = company.owner_id.as_uuid();
        self.authorize(actor, action, owner, company.team_id.map(|t| t.as_uuid()), "company")?;
        Ok(company)
    }

    fn view(p: &PaymentProfile) -> Option<SavedPaymentMethod> {
        Some(SavedPaymentMethod {
            gateway: p.gateway.clone(),
            kind: p.method_kind.clone()?,
            label: p.method_label.clone()?,
            saved_at: p.method_saved_at?,
        })
        .filter(|_| p.method_ref.is_some())
    }

    /// The payment method a company saved at `gateway`, if any.
    pub async fn payment_method(
        &self,
        actor: &Actor,
        company: Uuid,
        gateway: &str,
    ) -> Result<Option<SavedPaymentMethod>> {
        self.billed_company(actor, company, Action::Read).await?;
        Ok(self.profile(company, gateway).await?.as_ref().and_then(Self::view))
    }

    /// A link for the company's customer to save a payment method (managers and admins):
    /// the company gets its customer at the gateway now if it had none.
    pub async fn card_link(&self, actor: &Actor, gw: &dyn PaymentGateway, company: Uuid) -> Result<CardLink> {
        let c = self.billed_company(actor, company, Action::Update).await?;
        if self.profile(company, gw.name()).await?.is_none() {
            let email = c.contact_details.email.as_ref().map(|e| e.as_str().to_string());
            let customer = gw.create_customer(&c.name, email.as_deref(), company).await?;
            let now = self.crm.now();
            let p = PaymentProfile {
                id: Self::profile_id(company, gw.name()),
                company_id: company,
                gateway: gw.name().into(),
                customer_ref: customer,
                method_ref: None,
                method_kind: None,
                method_label: None,
                method_saved_at: None,
                created_at: now,
                updated_at: now,
                version: 1,
            };
            let cs = Changeset {
                writes: vec![Write::Insert { kind: EntityKind::PaymentProfile, row: self.profile_row(&p)? }],
                audit: vec![],
            };
            match self
                .commit(
                    Some(actor),
                    cs,
                    "payment_profile.created",
                    EntityKind::PaymentProfile,
                    p.id,
                    json!({"companyId": company, "gateway": gw.name()}),
                )
                .await
            {
                // Another manager's link made it first: theirs is the customer.
                Ok(()) | Err(Error::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let expires_at = self.crm.now() + Duration::days(CARD_LINK_DAYS);
        let exp = expires_at.timestamp();
        let sig = self.crm.auth_settings()?.sealer.sign(CARD_PURPOSE, &card_data(company, exp));
        Ok(CardLink { path: format!("/card/{}.{exp}.{sig}", company.simple()), expires_at })
    }

    /// The company a card token names, if its signature holds and it has not expired.
    pub fn verify_card_token(&self, token: &str) -> Option<Uuid> {
        let mut parts = token.splitn(3, '.');
        let id = Uuid::try_parse(parts.next()?).ok()?;
        let exp: i64 = parts.next()?.parse().ok()?;
        let sig = parts.next()?;
        let good = self.crm.auth_settings().ok()?.sealer.verify(CARD_PURPOSE, &card_data(id, exp), sig);
        (good && exp > self.crm.now().timestamp()).then_some(id)
    }

    /// The company behind a card token and the method it saved, for the card page
    /// (`None`: a forged, unknown or expired token).
    pub async fn card_holder(
        &self,
        token: &str,
        gateway: &str,
    ) -> Result<Option<(Company, Option<SavedPaymentMethod>)>> {
        let Some(id) = self.verify_card_token(token) else { return Ok(None) };
        let Some(c) = self.crm.store().get_as::<Company>(id).await?.filter(|c| !c.meta.is_deleted()) else {
            return Ok(None);
        };
        let saved = self.profile(id, gateway).await?.as_ref().and_then(Self::view);
        Ok(Some((c, saved)))
    }

    /// The seller's name as the customer's pages print it, if the settings have one.
    pub async fn seller_name(&self) -> Result<Option<String>> {
        let name = self.current_settings().await?.seller.name;
        Ok(Some(name).filter(|n| !n.trim().is_empty()))
    }

    /// Starts saving a method for the company behind a card token.
    pub async fn card_setup(&self, gw: &dyn PaymentGateway, token: &str) -> Result<CardSetup> {
        let company = self.verify_card_token(token).ok_or(Error::NotFound { entity: "card link" })?;
        let p = self.profile(company, gw.name()).await?.ok_or(Error::NotFound { entity: "card link" })?;
        let setup = gw.create_setup(&p.customer_ref, company).await?;
        Ok(CardSetup {
            gateway: gw.name().into(),
            setup_intent_id: setup.id,
            client_secret: setup.client_secret,
            public_key: gw.public_key(),
        })
    }

    /// The card page's word that the customer confirmed a setup: read back from the
    /// gateway, which must say it succeeded, for this company's customer.
    pub async fn card_saved(&self, gw: &dyn PaymentGateway, token: &str, setup_id: &str) -> Result<SavedPaymentMethod> {
        let company = self.verify_card_token(token).ok_or(Error::NotFound { entity: "card link" })?;
        self.save_setup(gw, setup_id, Some(company)).await?.ok_or_else(|| {
            Error::invalid("setupIntentId", "invalid_value", "the gateway does not know this setup for this company")
        })
    }

    /// Records the method of a setup the gateway says succeeded (the card page, or the
    /// gateway's `setup_intent.succeeded` webhook); `None` when the setup is not one of
    /// ours (or not of `company`).
    pub(crate) async fn save_setup(
        &self,
        gw: &dyn PaymentGateway,
        setup_id: &str,
        company: Option<Uuid>,
    ) -> Result<Option<SavedPaymentMethod>> {
        gateway::check_object_id(setup_id, "seti_", "setupIntentId")?;
        let setup = gw.retrieve_setup(setup_id).await?;
        let Some(owner) = setup.company_id.filter(|c| company.is_none_or(|want| want == *c)) else {
            return Ok(None);
        };
        if setup.status != "succeeded" {
            return Err(Error::invalid(
                "setupIntentId",
                "invalid_state",
                format!("the gateway says the setup is {}", setup.status),
            ));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let Some(before) = self.profile(owner, gw.name()).await? else { return Ok(None) };
            if setup.customer.as_deref() != Some(before.customer_ref.as_str()) {
                return Ok(None);
            }
            let Some(pm) = setup.payment_method.as_deref() else {
                return Err(Error::invalid("setupIntentId", "invalid_state", "the setup saved no payment method"));
            };
            if before.method_ref.as_deref() == Some(pm) {
                return Ok(Self::view(&before));
            }
            let method = gw.attach_method(pm, &before.customer_ref).await?;
            let now = self.crm.now();
            let after = PaymentProfile {
                method_ref: Some(method.id.clone()),
                method_kind: Some(method.kind.clone()),
                method_label: Some(method.label.clone()),
                method_saved_at: Some(now),
                updated_at: now,
                version: before.version + 1,
                ..before.clone()
            };
            let changes = json!({"companyId": owner, "gateway": gw.name(), "kind": method.kind, "label": method.label});
            match self.update_profile(None, before.version, &after, "payment_method.saved", changes).await {
                Ok(()) => return Ok(Self::view(&after)),
                Err(Error::VersionConflict { .. }) if attempt < 5 => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// Forgets a company's saved method, at the gateway too (managers and admins).
    pub async fn remove_payment_method(&self, actor: &Actor, gw: &dyn PaymentGateway, company: Uuid) -> Result<()> {
        self.billed_company(actor, company, Action::Update).await?;
        let before = self.profile(company, gw.name()).await?;
        let Some(before) = before.filter(|p| p.method_ref.is_some()) else {
            return Err(Error::NotFound { entity: "payment method" });
        };
        if let Some(pm) = &before.method_ref {
            gw.detach_method(pm).await?;
        }
        let now = self.crm.now();
        let after = PaymentProfile {
            method_ref: None,
            method_kind: None,
            method_label: None,
            method_saved_at: None,
            updated_at: now,
            version: before.version + 1,
            ..before.clone()
        };
        let changes = json!({"companyId": company, "gateway": gw.name(), "label": before.method_label});
        self.update_profile(Some(actor), before.version, &after, "payment_method.removed", changes).await
    }

    /// Writes a profile's change over version `from`, audited as `action`.
    async fn update_profile(
        &self,
        actor: Option<&Actor>,
        from: i64,
        after: &PaymentProfile,
        action: &str,
        changes: serde_json::Value,
    ) -> Result<()> {
        let cs = Changeset {
            writes: vec![Write::Update {
                kind: EntityKind::PaymentProfile,
                row: self.profile_row(after)?,
                expected_version: from,
            }],
            audit: vec![],
        };
        self.commit(actor, cs, action, EntityKind::PaymentProfile, after.id, changes).await
    }

    /// Charges what is left on an issued invoice to its company's saved method now
    /// (managers and admins): answers the invoice, its `chargeState` `charged` (and
    /// paid, when the gateway took it at once) or `failed` with `chargeError`.
    pub async fn charge_invoice(&self, actor: &Actor, gw: &dyn PaymentGateway, id: Uuid) -> Result<InvoiceView> {
        self.require(actor, Action::Update)?;
        let inv = self.load_invoice(id).await?;
        self.authorize(actor, Action::Update, inv.owner_id, inv.team_id, "invoice")?;
        if inv.doc_type != DocumentType::Invoice || !open(inv.status) || inv.balance <= 0 {
            return Err(conflict(format!("the invoice is {}; nothing is left to charge", inv.status), "status"));
        }
        if inv.charge_state == Some(ChargeState::Charging) && inv.updated_at + STALE_CHARGE > self.crm.now() {
            return Err(conflict("a charge of this invoice is under way", "chargeState"));
        }
        let company = inv.company_id.ok_or_else(|| conflict("the invoice has no company to charge", "companyId"))?;
        let saved = self.profile(company, gw.name()).await?.as_ref().and_then(Self::view);
        if saved.is_none() {
            return Err(conflict(
                "the company has no saved payment method: send its customer a card link",
                "paymentMethod",
            ));
        }
        self.change_invoice(Some(actor), id, "invoice.charge_requested", |i, _| {
            i.charge_state = Some(ChargeState::Due);
            i.charge_error = None;
            Ok(json!({"number": i.number, "balance": i.balance}))
        })
        .await?;
        self.charge(gw, id).await?;
        Ok(InvoiceView::of(self.load_invoice(id).await?, self.crm.now().date_naive()))
    }

    /// [`BillingService::charge_due_invoices`] on a person's request (managers and
    /// admins).
    pub async fn charge_due_invoices_as(&self, actor: &Actor, gw: &dyn PaymentGateway) -> Result<ChargeReport> {
        self.require(actor, Action::Update)?;
        self.charge_due_invoices(gw).await
    }

    /// The charging pass: every invoice due to be charged (and every claim left by a
    /// server that stopped) is charged once. Run by the payments loop.
    pub async fn charge_due_invoices(&self, gw: &dyn PaymentGateway) -> Result<ChargeReport> {
        let k = EntityKind::Invoice;
        let state = |s: ChargeState| {
            Ok::<_, Error>(Filter::Cmp(Cmp {
                column: k.require_column("charge_state")?,
                pred: Predicate::Eq(Value::Text(s.as_str().into())),
            }))
        };
        let stale = Filter::Cmp(Cmp {
            column: k.require_column("updated_at")?,
            pred: Predicate::Lt(Value::Timestamp(self.crm.now() - STALE_CHARGE)),
        });
        let q = StoreQuery {
            filter: Some(Filter::Or(vec![
                state(ChargeState::Due)?,
                Filter::And(vec![state(ChargeState::Charging)?, stale]),
            ])),
            sort: vec![SortKey { column: k.require_column("updated_at")?, direction: Direction::Asc }],
            limit: 100,
            include_deleted: false,
        };
        let due: Vec<Invoice> = self.crm.store().list_as(&q).await?;
        let mut report = ChargeReport::default();
        for inv in due {
            match self.charge(gw, inv.id).await {
                Ok(Some(ChargeState::Charged)) => report.charged += 1,
                Ok(Some(ChargeState::Failed)) => report.failed += 1,
                Ok(_) => {}
                // Left claimed: the next pass after STALE_CHARGE tries again, same key.
                Err(e @ (Error::Upstream { .. } | Error::Timeout(_))) => {
                    tracing::warn!(invoice = %inv.id, error = %e, "charging an invoice failed; it is tried again later")
                }
                Err(e) => return Err(e),
            }
        }
        Ok(report)
    }

    /// Claims and charges one invoice; answers where it ended (`None`: another server
    /// has it, or there was nothing to do).
    async fn charge(&self, gw: &dyn PaymentGateway, id: Uuid) -> Result<Option<ChargeState>> {
        let inv = self.load_invoice(id).await?;
        let now = self.crm.now();
        let fresh = match inv.charge_state {
            Some(ChargeState::Due) => true,
            Some(ChargeState::Charging) if inv.updated_at + STALE_CHARGE <= now => false,
            _ => return Ok(None),
        };
        // The claim: one server wins the version.
        let mut claimed = inv.clone();
        claimed.charge_state = Some(ChargeState::Charging);
        if fresh {
            claimed.charge_attempts += 1;
        }
        claimed.updated_at = now;
        claimed.version = inv.version + 1;
        let cs = Changeset {
            writes: vec![Write::Update {
                kind: EntityKind::Invoice,
                row: self.invoice_row(&claimed)?,
                expected_version: inv.version,
            }],
            audit: vec![],
        };
        match self.crm.store().apply(cs).await {
            Ok(()) => {}
            Err(Error::VersionConflict { .. }) => return Ok(None),
            Err(e) => return Err(e),
        }
        let profile = match claimed.company_id {
            Some(c) => self.profile(c, gw.name()).await?,
            None => None,
        };
        if !open(claimed.status) || claimed.balance <= 0 {
            // Paid (or voided) since it became due: nothing to charge, nothing failed.
            self.charge_ended(id, None, None, None).await?;
            return Ok(None);
        }
        let Some(pm) = profile.as_ref().and_then(|p| p.method_ref.clone()) else {
            let why = "the company has no saved payment method";
            return self.charge_ended(id, Some(ChargeState::Failed), Some(why.into()), None).await;
        };
        let Some(profile) = profile else { return Ok(None) };
        let req = gateway::IntentRequest {
            amount: claimed.balance,
            currency: claimed.currency.code().to_string(),
            invoice_id: id,
            invoice_number: claimed.number.clone(),
            customer: Some(profile.customer_ref.clone()),
            payment_method: Some(pm),
            method_types: vec![profile.method_kind.clone().unwrap_or_else(|| "card".into())],
            idempotency_key: format!("charge-{id}-{}", claimed.charge_attempts),
        };
        let intent = match gw.create_intent(&req).await {
            Ok(i) => i,
            Err(e @ (Error::Upstream { .. } | Error::Timeout(_))) => return Err(e),
            Err(e) => return self.charge_ended(id, Some(ChargeState::Failed), Some(e.to_string()), None).await,
        };
        let (state, error) = match (intent.decline.clone(), intent.status.as_str()) {
            (Some(why), _) => (ChargeState::Failed, Some(why)),
            (None, "succeeded" | "processing") => (ChargeState::Charged, None),
            (None, "requires_action") => (
                ChargeState::Failed,
                Some("the customer's bank asks them to confirm this payment: send them the invoice's pay link".into()),
            ),
            (None, other) => (ChargeState::Failed, Some(format!("the gateway left the payment {other}"))),
        };
        let end = self.charge_ended(id, Some(state), error, Some(&intent.id)).await?;
        if intent.status == "succeeded" && intent.decline.is_none() {
            // The webhook may have recorded it first: the intent id is the payment's
            // unique reference.
            match self
                .apply_payment(
                    None,
                    id,
                    intent.amount_received,
                    method_of(profile.method_kind.as_deref()),
                    gw.name(),
                    Some(intent.id.clone()),
                    self.crm.now(),
                    None,
                )
                .await
            {
                Ok(_) => {}
                Err(Error::Conflict { field: Some(f), .. }) if f == "reference" || f == "status" => {}
                Err(e) => return Err(e),
            }
        }
        Ok(end)
    }

    /// Where a charge ended: `None` clears it (nothing was left to charge).
    async fn charge_ended(
        &self,
        id: Uuid,
        state: Option<ChargeState>,
        error: Option<String>,
        intent: Option<&str>,
    ) -> Result<Option<ChargeState>> {
        let action = match state {
            Some(ChargeState::Failed) => "invoice.charge_failed",
            Some(_) => "invoice.charged",
            None => "invoice.charge_cancelled",
        };
        self.change_invoice(None, id, action, |i, _| {
            i.charge_state = state;
            i.charge_error = error.clone();
            Ok(json!({"number": i.number, "amount": i.balance, "currency": i.currency, "intent": intent, "error": error, "attempt": i.charge_attempts}))
        })
        .await?;
        Ok(state)
    }
}

fn card_data(company: Uuid, exp: i64) -> Vec<u8> {
    let mut d = company.as_bytes().to_vec();
    d.extend_from_slice(&exp.to_be_bytes());
    d
}
