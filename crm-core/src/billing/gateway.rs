//! Payment gateways: the [`PaymentGateway`] trait (customers, payment intents, refunds,
//! saved methods), Stripe's implementation ([`StripeGateway`], base URL configurable so
//! the tests run it against localstripe), and the verification of Stripe's webhook
//! signatures ([`verify_stripe_signature`]).
//!
//! A payment is never taken from a redirect or from the webhook's body: the webhook
//! only says "look at this object"; the server fetches the payment intent from the
//! gateway with its secret key and records what the gateway says (see
//! `BillingService::process_gateway_events`).

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::error::Result;

/// A payment asked of a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntentRequest {
    /// Minor units.
    pub amount: i64,
    /// ISO 4217, as the invoice has it.
    pub currency: String,
    /// The invoice it pays (kept in the intent's metadata).
    pub invoice_id: Uuid,
    /// The invoice's number, for the customer's statement.
    pub invoice_number: Option<String>,
    /// The gateway's customer.
    pub customer: Option<String>,
    /// A saved payment method to charge now (off session).
    pub payment_method: Option<String>,
    /// The kinds of method the intent takes (`card`, `sepa_debit`); empty: the
    /// gateway's default.
    pub method_types: Vec<String>,
    /// Makes a retried request the same intent.
    pub idempotency_key: String,
}

/// A payment intent as the gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayIntent {
    /// The gateway's id (`pi_…`).
    pub id: String,
    /// `requires_payment_method`, `processing`, `succeeded`, `canceled`, …
    pub status: String,
    /// Asked, minor units.
    pub amount: i64,
    /// Received, minor units.
    pub amount_received: i64,
    /// Lower-case ISO 4217, as Stripe writes it.
    pub currency: String,
    /// What the customer's browser needs to confirm it.
    pub client_secret: Option<String>,
    /// The invoice in its metadata.
    pub invoice_id: Option<Uuid>,
    /// The payment method's id.
    pub payment_method: Option<String>,
    /// Why the gateway declined it (`Your card was declined.`): an off-session charge
    /// the customer's bank refused.
    pub decline: Option<String>,
}

/// The saving of a payment method for later charges (Stripe's SetupIntent), as the
/// gateway reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewaySetup {
    /// The gateway's id (`seti_…`).
    pub id: String,
    /// `requires_payment_method`, `requires_action`, `succeeded`, `canceled`, …
    pub status: String,
    /// What the customer's browser needs to confirm it.
    pub client_secret: Option<String>,
    /// The gateway's customer it saves the method for.
    pub customer: Option<String>,
    /// The method saved.
    pub payment_method: Option<String>,
    /// The company in its metadata.
    pub company_id: Option<Uuid>,
}

/// A refund as the gateway holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRefund {
    /// The gateway's id (`re_…`).
    pub id: String,
    /// Minor units.
    pub amount: i64,
    /// `succeeded`, `pending`, `failed`, `canceled`.
    pub status: String,
}

/// A charge's payment intent and the refunds made of it (however they were made: the
/// API, or a person in the gateway's dashboard).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChargeRefunds {
    /// The intent the charge belongs to (`pi_…`).
    pub intent: Option<String>,
    /// Its refunds.
    pub refunds: Vec<GatewayRefund>,
}

/// A saved payment method of a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedMethod {
    /// The gateway's id (`pm_…`).
    pub id: String,
    /// `card`, `sepa_debit`, `us_bank_account`, …
    pub kind: String,
    /// What a person recognises it by (`visa •••• 4242`).
    pub label: String,
}

/// A payment gateway: one implementation per provider (Stripe here; PayPal and
/// Braintree would be others).
#[async_trait]
pub trait PaymentGateway: Send + Sync + 'static {
    /// `stripe`: the name payments record as their gateway.
    fn name(&self) -> &'static str;
    /// The key a browser uses (Stripe's publishable key), if any.
    fn public_key(&self) -> Option<String>;
    /// The script a pay page loads to take the customer's card (Stripe.js).
    fn script_url(&self) -> Option<String>;
    /// A customer at the gateway, for saved methods.
    async fn create_customer(&self, name: &str, email: Option<&str>, company: Uuid) -> Result<String>;
    /// A payment intent; charged at once when it names a saved method.
    async fn create_intent(&self, req: &IntentRequest) -> Result<GatewayIntent>;
    /// The intent as the gateway holds it now.
    async fn retrieve_intent(&self, id: &str) -> Result<GatewayIntent>;
    /// Gives back (part of) what an intent took; answers the refund's id. The same
    /// `idempotency_key` makes a retried request the same refund.
    async fn refund(&self, intent: &str, amount: i64, idempotency_key: &str) -> Result<String>;
    /// A customer's saved payment methods.
    async fn saved_methods(&self, customer: &str) -> Result<Vec<SavedMethod>>;
    /// Starts saving a payment method of a customer for off-session charges; the
    /// customer's browser confirms it with the client secret.
    async fn create_setup(&self, customer: &str, company: Uuid) -> Result<GatewaySetup>;
    /// The setup as the gateway holds it now.
    async fn retrieve_setup(&self, id: &str) -> Result<GatewaySetup>;
    /// The method, attached to the customer if it is not already (a succeeded setup
    /// attaches it at Stripe; this makes sure).
    async fn attach_method(&self, method: &str, customer: &str) -> Result<SavedMethod>;
    /// Forgets a saved method at the gateway.
    async fn detach_method(&self, method: &str) -> Result<()>;
    /// A payment method as the gateway holds it.
    async fn retrieve_method(&self, method: &str) -> Result<SavedMethod>;
    /// A charge's intent and its refunds (`charge.refunded` names the charge).
    async fn charge_refunds(&self, charge: &str) -> Result<ChargeRefunds>;
}

/// A gateway object id as Stripe writes them (`pi_3Nx…`): its prefix, then letters,
/// digits and underscores; errors name `field`.
pub fn check_object_id(id: &str, prefix: &str, field: &str) -> Result<()> {
    let ok = id.len() <= 255
        && id.starts_with(prefix)
        && id.len() > prefix.len()
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ok {
        Ok(())
    } else {
        Err(crate::error::Error::invalid(field, "invalid_value", format!("not a gateway id starting {prefix}")))
    }
}

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureError {
    /// No `Stripe-Signature` header, or one without `t=` and `v1=`.
    Malformed,
    /// Signed too long ago (or in the future) for the tolerance: a replay.
    Stale,
    /// No secret signs this payload so.
    Mismatch,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SignatureError::Malformed => "the Stripe-Signature header is missing or malformed",
            SignatureError::Stale => "the signature's timestamp is outside the tolerance",
            SignatureError::Mismatch => "no webhook secret matches the signature",
        })
    }
}

/// Verifies a `Stripe-Signature` header (`t=<unix>,v1=<hex>[,v1=<hex>…]`) over the raw
/// body: HMAC-SHA256 of `"<t>.<body>"` under any of `secrets` (several during a
/// rotation), compared in constant time, with `t` within `tolerance` seconds of `now`.
pub fn verify_stripe_signature(
    header: &str,
    body: &[u8],
    secrets: &[String],
    now: i64,
    tolerance: i64,
) -> std::result::Result<i64, SignatureError> {
    let mut t: Option<i64> = None;
    let mut sigs: Vec<Vec<u8>> = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse().ok(),
            Some(("v1", v)) => {
                if let Ok(b) = hex::decode(v) {
                    sigs.push(b);
                }
            }
            _ => {}
        }
    }
    let (Some(t), false) = (t, sigs.is_empty()) else { return Err(SignatureError::Malformed) };
    let mut matched = false;
    for secret in secrets {
        for sig in &sigs {
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else { continue };
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            // `verify_slice` compares in constant time.
            matched |= mac.verify_slice(sig).is_ok();
        }
    }
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if (now - t).abs() > tolerance {
        return Err(SignatureError::Stale);
    }
    Ok(t)
}

/// A `Stripe-Signature` header for a body, as Stripe makes it (tests and tools).
pub fn sign_stripe(body: &[u8], secret: &str, t: i64) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Stripe's settings.
#[derive(Clone)]
pub struct StripeConfig {
    /// `https://api.stripe.com` (localstripe's address in the tests).
    pub api_base: String,
    /// The secret key (`sk_…`).
    pub secret_key: String,
    /// The publishable key (`pk_…`) the pay page gives Stripe.js.
    pub publishable_key: Option<String>,
    /// Stripe.js (`https://js.stripe.com/v3/`).
    pub js_url: String,
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig").field("api_base", &self.api_base).field("secret_key", &"<redacted>").finish()
    }
}

/// Stripe, through its REST API (PaymentIntents: cards, SEPA and ACH debits and wallets
/// are Stripe payment methods of an intent).
#[cfg(feature = "stripe")]
#[derive(Debug, Clone)]
pub struct StripeGateway {
    http: reqwest::Client,
    config: StripeConfig,
}

#[cfg(feature = "stripe")]
mod stripe_impl {
    use super::*;
    use crate::error::Error;
    use serde_json::Value as Json;

    fn gateway_error(what: &str, e: impl std::fmt::Display) -> Error {
        Error::Upstream { message: format!("Stripe: {what}: {e}") }
    }

    impl StripeGateway {
        /// A client of Stripe's API at `config.api_base`.
        pub fn new(config: StripeConfig) -> Result<Self> {
            let http = reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .map_err(|e| Error::internal("an HTTP client", e))?;
            Ok(Self { http, config })
        }

        async fn call(
            &self,
            method: reqwest::Method,
            path: &str,
            form: &[(String, String)],
            key: Option<&str>,
        ) -> Result<Json> {
            let url = format!("{}/v1/{path}", self.config.api_base.trim_end_matches('/'));
            let mut req = self.http.request(method.clone(), &url).bearer_auth(&self.config.secret_key);
            if method == reqwest::Method::POST {
                req = req.form(form);
            }
            if let Some(k) = key {
                req = req.header("Idempotency-Key", k);
            }
            let (status, body) = self.send(req, path).await?;
            if !status.is_success() {
                let msg = body.pointer("/error/message").and_then(Json::as_str).unwrap_or("refused");
                return Err(gateway_error(path, format!("{status}: {msg}")));
            }
            Ok(body)
        }

        async fn send(&self, req: reqwest::RequestBuilder, path: &str) -> Result<(reqwest::StatusCode, Json)> {
            let resp = req.send().await.map_err(|e| gateway_error(path, e))?;
            let status = resp.status();
            let body: Json = resp.json().await.map_err(|e| gateway_error(path, e))?;
            Ok((status, body))
        }

        fn setup(j: &Json) -> Result<GatewaySetup> {
            let s = |k: &str| j.get(k).and_then(Json::as_str).map(str::to_string);
            Ok(GatewaySetup {
                id: s("id").ok_or_else(|| gateway_error("setup_intents", "a setup without an id"))?,
                status: s("status").unwrap_or_default(),
                client_secret: s("client_secret"),
                customer: s("customer"),
                payment_method: s("payment_method"),
                company_id: j
                    .pointer("/metadata/company_id")
                    .and_then(Json::as_str)
                    .and_then(|u| Uuid::parse_str(u).ok()),
            })
        }

        fn method(m: &Json) -> Option<SavedMethod> {
            let id = m.get("id")?.as_str()?.to_string();
            let kind = m.get("type").and_then(Json::as_str).unwrap_or("card").to_string();
            let label = match kind.as_str() {
                "card" => {
                    let brand = m.pointer("/card/brand").and_then(Json::as_str).unwrap_or("card");
                    let last4 = m.pointer("/card/last4").and_then(Json::as_str).unwrap_or("????");
                    format!("{brand} •••• {last4}")
                }
                "sepa_debit" => {
                    let last4 = m.pointer("/sepa_debit/last4").and_then(Json::as_str).unwrap_or("????");
                    format!("SEPA debit •••• {last4}")
                }
                "us_bank_account" => {
                    let bank = m.pointer("/us_bank_account/bank_name").and_then(Json::as_str).unwrap_or("bank");
                    let last4 = m.pointer("/us_bank_account/last4").and_then(Json::as_str).unwrap_or("????");
                    format!("{bank} •••• {last4}")
                }
                other => other.replace('_', " "),
            };
            Some(SavedMethod { id, kind, label })
        }

        fn intent(j: &Json) -> Result<GatewayIntent> {
            let s = |k: &str| j.get(k).and_then(Json::as_str).map(str::to_string);
            let i = |k: &str| j.get(k).and_then(Json::as_i64).unwrap_or(0);
            Ok(GatewayIntent {
                id: s("id").ok_or_else(|| gateway_error("payment_intents", "an intent without an id"))?,
                status: s("status").unwrap_or_default(),
                amount: i("amount"),
                amount_received: match j.get("amount_received").and_then(Json::as_i64) {
                    Some(r) => r,
                    // localstripe leaves it out: a succeeded intent received its amount.
                    None if s("status").as_deref() == Some("succeeded") => i("amount"),
                    None => 0,
                },
                currency: s("currency").unwrap_or_default(),
                client_secret: s("client_secret"),
                invoice_id: j
                    .pointer("/metadata/invoice_id")
                    .and_then(Json::as_str)
                    .and_then(|u| Uuid::parse_str(u).ok()),
                payment_method: s("payment_method"),
                decline: None,
            })
        }
    }

    #[async_trait]
    impl PaymentGateway for StripeGateway {
        fn name(&self) -> &'static str {
            "stripe"
        }

        fn public_key(&self) -> Option<String> {
            self.config.publishable_key.clone()
        }

        fn script_url(&self) -> Option<String> {
            Some(self.config.js_url.clone())
        }

        async fn create_customer(&self, name: &str, email: Option<&str>, company: Uuid) -> Result<String> {
            let mut form =
                vec![("name".to_string(), name.to_string()), ("metadata[company_id]".into(), company.to_string())];
            if let Some(e) = email {
                form.push(("email".into(), e.into()));
            }
            let j = self.call(reqwest::Method::POST, "customers", &form, None).await?;
            j.get("id").and_then(Json::as_str).map(str::to_string).ok_or_else(|| gateway_error("customers", "no id"))
        }

        async fn create_intent(&self, req: &IntentRequest) -> Result<GatewayIntent> {
            let mut form = vec![
                ("amount".to_string(), req.amount.to_string()),
                ("currency".into(), req.currency.to_ascii_lowercase()),
                ("metadata[invoice_id]".into(), req.invoice_id.to_string()),
            ];
            if let Some(n) = &req.invoice_number {
                form.push(("metadata[invoice_number]".into(), n.clone()));
            }
            if let Some(c) = &req.customer {
                form.push(("customer".into(), c.clone()));
            }
            for t in &req.method_types {
                form.push(("payment_method_types[]".into(), t.clone()));
            }
            if let Some(m) = &req.payment_method {
                form.push(("payment_method".into(), m.clone()));
                form.push(("confirm".into(), "true".into()));
                form.push(("off_session".into(), "true".into()));
            }
            if req.payment_method.is_none() {
                let j = self.call(reqwest::Method::POST, "payment_intents", &form, Some(&req.idempotency_key)).await?;
                return Self::intent(&j);
            }
            // Charged now: a decline is an answer (402 with the card error, and the
            // intent when Stripe made one), not a failure to reach Stripe.
            let url = format!("{}/v1/payment_intents", self.config.api_base.trim_end_matches('/'));
            let http = self
                .http
                .post(url)
                .bearer_auth(&self.config.secret_key)
                .form(&form)
                .header("Idempotency-Key", &req.idempotency_key);
            let (status, j) = self.send(http, "payment_intents").await?;
            // 402: declined. Another 4xx but 429 (a SEPA method on a USD invoice, a
            // detached method): refused for good, not worth retrying either.
            let refused = status.is_client_error() && status != reqwest::StatusCode::TOO_MANY_REQUESTS;
            if refused {
                let msg = j.pointer("/error/message").and_then(Json::as_str).unwrap_or("declined").to_string();
                let mut intent = match j.pointer("/error/payment_intent") {
                    Some(pi) => Self::intent(pi)?,
                    None => GatewayIntent {
                        id: String::new(),
                        status: "requires_payment_method".into(),
                        amount: req.amount,
                        amount_received: 0,
                        currency: req.currency.to_ascii_lowercase(),
                        client_secret: None,
                        invoice_id: Some(req.invoice_id),
                        payment_method: req.payment_method.clone(),
                        decline: None,
                    },
                };
                intent.decline = Some(msg);
                return Ok(intent);
            }
            if !status.is_success() {
                let msg = j.pointer("/error/message").and_then(Json::as_str).unwrap_or("refused");
                return Err(gateway_error("payment_intents", format!("{status}: {msg}")));
            }
            Self::intent(&j)
        }

        async fn retrieve_intent(&self, id: &str) -> Result<GatewayIntent> {
            check_object_id(id, "pi_", "id")?;
            let j = self.call(reqwest::Method::GET, &format!("payment_intents/{id}"), &[], None).await?;
            Self::intent(&j)
        }

        async fn refund(&self, intent: &str, amount: i64, idempotency_key: &str) -> Result<String> {
            let form = vec![("payment_intent".to_string(), intent.to_string()), ("amount".into(), amount.to_string())];
            let j = self.call(reqwest::Method::POST, "refunds", &form, Some(idempotency_key)).await?;
            j.get("id").and_then(Json::as_str).map(str::to_string).ok_or_else(|| gateway_error("refunds", "no id"))
        }

        async fn saved_methods(&self, customer: &str) -> Result<Vec<SavedMethod>> {
            check_object_id(customer, "cus_", "customer")?;
            let path = format!("payment_methods?customer={customer}&type=card");
            let j = self.call(reqwest::Method::GET, &path, &[], None).await?;
            let list = j.get("data").and_then(Json::as_array).cloned().unwrap_or_default();
            Ok(list.iter().filter_map(Self::method).collect())
        }

        async fn create_setup(&self, customer: &str, company: Uuid) -> Result<GatewaySetup> {
            let form = vec![
                ("customer".to_string(), customer.to_string()),
                ("usage".into(), "off_session".into()),
                ("payment_method_types[]".into(), "card".into()),
                ("payment_method_types[]".into(), "sepa_debit".into()),
                ("metadata[company_id]".into(), company.to_string()),
            ];
            let j = self.call(reqwest::Method::POST, "setup_intents", &form, None).await?;
            Self::setup(&j)
        }

        async fn retrieve_setup(&self, id: &str) -> Result<GatewaySetup> {
            check_object_id(id, "seti_", "setupIntentId")?;
            let j = self.call(reqwest::Method::GET, &format!("setup_intents/{id}"), &[], None).await?;
            Self::setup(&j)
        }

        async fn attach_method(&self, method: &str, customer: &str) -> Result<SavedMethod> {
            check_object_id(method, "pm_", "paymentMethod")?;
            let j = self.call(reqwest::Method::GET, &format!("payment_methods/{method}"), &[], None).await?;
            let j = match j.get("customer").and_then(Json::as_str) {
                Some(c) if c == customer => j,
                Some(_) => {
                    return Err(Error::invalid(
                        "paymentMethod",
                        "invalid_value",
                        "the method belongs to another customer",
                    ))
                }
                None => {
                    let form = vec![("customer".to_string(), customer.to_string())];
                    self.call(reqwest::Method::POST, &format!("payment_methods/{method}/attach"), &form, None).await?
                }
            };
            Self::method(&j).ok_or_else(|| gateway_error("payment_methods", "a method without an id"))
        }

        async fn detach_method(&self, method: &str) -> Result<()> {
            check_object_id(method, "pm_", "paymentMethod")?;
            self.call(reqwest::Method::POST, &format!("payment_methods/{method}/detach"), &[], None).await?;
            Ok(())
        }

        async fn retrieve_method(&self, method: &str) -> Result<SavedMethod> {
            check_object_id(method, "pm_", "paymentMethod")?;
            let j = self.call(reqwest::Method::GET, &format!("payment_methods/{method}"), &[], None).await?;
            Self::method(&j).ok_or_else(|| gateway_error("payment_methods", "a method without an id"))
        }

        async fn charge_refunds(&self, charge: &str) -> Result<ChargeRefunds> {
            check_object_id(charge, "ch_", "charge")?;
            let c = self.call(reqwest::Method::GET, &format!("charges/{charge}"), &[], None).await?;
            let list =
                self.call(reqwest::Method::GET, &format!("refunds?charge={charge}&limit=100"), &[], None).await?;
            let refunds = list
                .get("data")
                .and_then(Json::as_array)
                .map(|rs| {
                    rs.iter()
                        .filter_map(|r| {
                            Some(GatewayRefund {
                                id: r.get("id")?.as_str()?.to_string(),
                                amount: r.get("amount")?.as_i64()?,
                                status: r.get("status").and_then(Json::as_str).unwrap_or("succeeded").to_string(),
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(ChargeRefunds { intent: c.get("payment_intent").and_then(Json::as_str).map(str::to_string), refunds })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    #[test]
    fn good_bad_stale_and_rotated_signatures() {
        let secrets = vec!["whsec_old".to_string(), "whsec_new".to_string()];
        let now = 1_760_000_000;
        let good = sign_stripe(BODY, "whsec_new", now - 10);
        assert_eq!(verify_stripe_signature(&good, BODY, &secrets, now, 300), Ok(now - 10));
        // Signed with the secret being rotated out: still good.
        let old = sign_stripe(BODY, "whsec_old", now);
        assert!(verify_stripe_signature(&old, BODY, &secrets, now, 300).is_ok());
        // Another secret, another body, a stale or future timestamp, nothing at all.
        let other = sign_stripe(BODY, "whsec_other", now);
        assert_eq!(verify_stripe_signature(&other, BODY, &secrets, now, 300), Err(SignatureError::Mismatch));
        assert_eq!(verify_stripe_signature(&good, b"{}", &secrets, now, 300), Err(SignatureError::Mismatch));
        let stale = sign_stripe(BODY, "whsec_new", now - 301);
        assert_eq!(verify_stripe_signature(&stale, BODY, &secrets, now, 300), Err(SignatureError::Stale));
        let future = sign_stripe(BODY, "whsec_new", now + 301);
        assert_eq!(verify_stripe_signature(&future, BODY, &secrets, now, 300), Err(SignatureError::Stale));
        assert_eq!(verify_stripe_signature("", BODY, &secrets, now, 300), Err(SignatureError::Malformed));
        assert_eq!(verify_stripe_signature("t=1", BODY, &secrets, now, 300), Err(SignatureError::Malformed));
        // A header with a second, wrong v1 (Stripe sends several during its own
        // rotations) still matches on the good one.
        let two = format!("{good},v1={}", "00".repeat(32));
        assert!(verify_stripe_signature(&two, BODY, &secrets, now, 300).is_ok());
    }
}
