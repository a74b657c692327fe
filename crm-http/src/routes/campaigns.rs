//! Email campaigns: `/api/campaign-templates`, `/api/segments`, `/api/campaigns` (with
//! their lifecycle, metrics and recipients), `/api/suppressions`, contacts' consent and
//! campaign history, bounce intake; and the public pages recipients reach from a
//! message: `/u/{token}` (unsubscribe, RFC 8058 one-click) and `/t/o/…`, `/t/c/…`
//! (open pixel, click redirect).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::Json;
use crm_core::campaign::{
    dsn, Bounce, CampaignInput, CampaignStats, ConsentInput, ContactCampaign, SegmentInput, SegmentPreview,
    SuppressionInput, TemplateInput,
};
use crm_core::model::campaign::{
    Campaign, CampaignRecipient, CampaignTemplate, Consent, RecipientState, Segment, Suppression,
};
use crm_core::{Crm, Error};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{created, List};
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::openapi::{query_param, Api, Spec};
use crate::AppState;

/// The routes and their document.
pub fn api() -> Api {
    const C: &str = "campaigns";
    const T: &str = "/api/campaign-templates/{id}";
    const S: &str = "/api/segments/{id}";
    const ONE: &str = "/api/campaigns/{id}";
    let mjml = "<mjml><mj-body><mj-section><mj-column><mj-text>Hello {{ contact.first_name | default(\"there\") }}</mj-text><mj-button href=\"https://example.com/offer\">See the offer</mj-button></mj-column></mj-section></mj-body></mjml>";
    Api::new()
        .op(Spec::get("/api/campaign-templates", C, "Every campaign template, newest first").list::<CampaignTemplate>("The templates"), get(templates))
        .op(
            Spec::post("/api/campaign-templates", C, "A new template: MJML (rendered by mrml) with minijinja placeholders; an unknown placeholder is an error naming it (managers and admins)")
                .body::<TemplateInput>()
                .example(serde_json::json!({"name": "Launch", "subject": "News for {{ company.name | default(\"you\") }}", "mjml": mjml}))
                .created::<CampaignTemplate>("The template"),
            post(create_template),
        )
        .op(Spec::get(T, C, "One template").ok::<CampaignTemplate>("The template"), get(template))
        .op(Spec::patch(T, C, "Change a template").body::<TemplateInput>().ok::<CampaignTemplate>("The template"), patch(update_template))
        .op(Spec::delete(T, C, "Remove a template no unfinished campaign uses").empty(204, "Removed"), axum::routing::delete(delete_template))
        .op(
            Spec::post("/api/campaign-templates/{id}/preview", C, "The template rendered for a contact (or with empty values)")
                .optional_body::<PreviewInput>()
                .ok::<PreviewView>("Subject, HTML and text, and a link to the HTML as a page of its own"),
            post(preview_template),
        )
        .op(
            Spec::get("/campaign-preview/{token}", C, "A template's HTML as sent, for the app to frame: the link of a preview, good for ten minutes")
                .public()
                .bytes("text/html", "The email's HTML (its inline styles allowed; no script, no form, sandboxed)")
                .bytes_status(404, "text/html", "A forged or expired link"),
            get(preview_page),
        )
        .op(
            Spec::post("/api/campaign-templates/{id}/test-send", C, "Send the template to one address now, rendered for a contact (not tracked)")
                .body::<TestSendInput>()
                .example(serde_json::json!({"to": "me@example.com"}))
                .empty(202, "Sent to the SMTP server"),
            post(test_send),
        )
        .op(Spec::get("/api/segments", C, "Every segment, newest first").list::<Segment>("The segments"), get(segments))
        .op(
            Spec::post("/api/segments", C, "A new segment: a filter over contacts (the list grammar; `\"\"` for every contact), a filter over their companies, and/or a static list of contacts")
                .body::<SegmentInput>()
                .example(serde_json::json!({"name": "Customers", "filter": "lifecycleStage[eq]:customer"}))
                .created::<Segment>("The segment"),
            post(create_segment),
        )
        .op(Spec::get(S, C, "One segment").ok::<Segment>("The segment"), get(segment))
        .op(Spec::patch(S, C, "Change a segment").body::<SegmentInput>().ok::<Segment>("The segment"), patch(update_segment))
        .op(Spec::delete(S, C, "Remove a segment no unfinished campaign uses").empty(204, "Removed"), axum::routing::delete(delete_segment))
        .op(Spec::get("/api/segments/{id}/preview", C, "How many contacts a segment holds now, and ten of them").ok::<SegmentPreview>("Count and sample"), get(preview_segment))
        .op(Spec::get("/api/campaigns", C, "Every campaign, newest first").list::<Campaign>("The campaigns"), get(campaigns))
        .op(
            Spec::post("/api/campaigns", C, "A new campaign, in draft (managers and admins)")
                .body::<CampaignInput>()
                .created::<Campaign>("The campaign"),
            post(create_campaign),
        )
        .op(Spec::get(ONE, C, "One campaign").ok::<Campaign>("The campaign"), get(campaign))
        .op(Spec::patch(ONE, C, "Change a draft or scheduled campaign").body::<CampaignInput>().ok::<Campaign>("The campaign"), patch(update_campaign))
        .op(Spec::delete(ONE, C, "Remove a draft or cancelled campaign").empty(204, "Removed"), axum::routing::delete(delete_campaign))
        .op(
            Spec::post("/api/campaigns/{id}/schedule", C, "Schedule a draft (at `at`, or now): the sender freezes its audience and sends it then")
                .optional_body::<ScheduleInput>()
                .ok::<Campaign>("The campaign"),
            post(schedule),
        )
        .op(Spec::post("/api/campaigns/{id}/pause", C, "Pause a scheduled or sending campaign").ok::<Campaign>("The campaign"), post(pause))
        .op(Spec::post("/api/campaigns/{id}/resume", C, "Resume a paused campaign where it stopped").ok::<Campaign>("The campaign"), post(resume))
        .op(Spec::post("/api/campaigns/{id}/cancel", C, "Stop a campaign for good").ok::<Campaign>("The campaign"), post(cancel))
        .op(
            Spec::get("/api/campaigns/{id}/stats", C, "A campaign's figures: audience, sent, delivered, bounced, opens (unique and all), clicks, unsubscribes, complaints, rates")
                .ok::<CampaignStats>("The figures"),
            get(stats),
        )
        .op(
            Spec::get("/api/campaigns/{id}/recipients", C, "A campaign's recipients and what became of each message")
                .query(vec![
                    query_param("state", utoipa::openapi::schema::Type::String, "Only this state: queued, sending, sent, failed, interrupted, skipped"),
                    query_param("limit", utoipa::openapi::schema::Type::Integer, "At most this many (default 100, at most 10000)"),
                ])
                .list::<CampaignRecipient>("The recipients"),
            get(recipients),
        )
        .op(
            Spec::post("/api/campaigns/bounces", C, "Bounce intake: an RFC 3464 delivery status notification or RFC 5965 abuse report (the raw message, as `message/rfc822` or `application/octet-stream`), or a JSON list of bounces; hard bounces and complaints suppress the address")
                .bytes_body("application/octet-stream")
                .also_json::<BounceList>()
                .ok::<BounceReport>("What was taken in"),
            post(bounces),
        )
        .op(Spec::get("/api/contacts/{id}/campaigns", C, "The campaigns a contact was in, newest first").list::<ContactCampaign>("The history"), get(contact_history))
        .op(Spec::get("/api/contacts/{id}/consent", C, "A contact's consent to campaigns").ok::<Consent>("The consent"), get(consent))
        .op(
            Spec::put("/api/contacts/{id}/consent", C, "Record a contact's consent to campaigns")
                .body::<ConsentInput>()
                .example(serde_json::json!({"status": "subscribed", "source": "form"}))
                .ok::<Consent>("The consent"),
            axum::routing::put(set_consent),
        )
        .op(
            Spec::post("/api/contacts/{id}/consent/confirmation", C, "Double opt-in: set a contact's consent to pending and email them a link to confirm it")
                .ok::<Consent>("The consent, pending"),
            post(request_confirmation),
        )
        .op(
            Spec::get("/c/{token}", C, "The page a double opt-in email links to")
                .public()
                .bytes("text/html", "A page with a confirm button")
                .bytes_status(404, "text/html", "A forged or unknown link"),
            get(confirm_page),
        )
        .op(
            Spec::post("/c/{token}", C, "Confirm a subscription (double opt-in)")
                .public()
                .bytes_body("application/x-www-form-urlencoded")
                .bytes("text/html", "Confirmed")
                .bytes_status(404, "text/html", "A forged or unknown link"),
            post(confirm),
        )
        .op(Spec::get("/api/suppressions", C, "The suppression list, newest first").list::<Suppression>("The suppressed addresses"), get(suppressions))
        .op(
            Spec::post("/api/suppressions", C, "Suppress an address: no campaign reaches it")
                .body::<SuppressionInput>()
                .created::<Suppression>("The suppression"),
            post(suppress),
        )
        .op(Spec::delete("/api/suppressions/{id}", C, "Lift a suppression").empty(204, "Removed"), axum::routing::delete(unsuppress))
        .op(
            Spec::get("/u/{token}", C, "The unsubscribe page a campaign message links to")
                .public()
                .bytes("text/html", "A page with an unsubscribe button")
                .bytes_status(404, "text/html", "A forged or unknown link"),
            get(unsubscribe_page),
        )
        .op(
            Spec::post("/u/{token}", C, "Unsubscribe (RFC 8058 one-click: a form body `List-Unsubscribe=One-Click`, or the page's button)")
                .public()
                .bytes_body("application/x-www-form-urlencoded")
                .bytes("text/html", "Unsubscribed")
                .bytes_status(404, "text/html", "A forged or unknown link"),
            post(unsubscribe),
        )
        .op(
            Spec::get("/t/o/{token}", C, "The open pixel of a campaign message (a 1×1 GIF, whatever the token)")
                .public()
                .bytes("image/gif", "The pixel"),
            get(open_pixel),
        )
        .op(
            Spec::get("/t/c/{token}", C, "A tracked link of a campaign message: redirects to the URL it was signed for")
                .public()
                .query(vec![query_param("url", utoipa::openapi::schema::Type::String, "The link's target, as signed")])
                .empty(302, "To the link's target")
                .bytes_status(404, "text/html", "A forged link, or a URL it was not signed for"),
            get(click),
        )
}

/// A contact to render for.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewInput {
    /// The contact (default: empty values).
    #[serde(default)]
    pub contact_id: Option<Uuid>,
}

/// Where a test send goes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TestSendInput {
    /// The address.
    pub to: String,
    /// The contact to render for.
    #[serde(default)]
    pub contact_id: Option<Uuid>,
}

/// When to start.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleInput {
    /// The start (RFC 3339); now when absent.
    #[serde(default)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Bounces as a provider's webhook reports them: `[{email, kind, status?, diagnostic?,
/// recipientId?}]`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BounceList(pub Vec<Bounce>);

/// What a bounce report held.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BounceReport {
    /// The addresses it was about.
    pub bounces: Vec<Bounce>,
    /// How many were taken in.
    pub matched: usize,
}

async fn templates(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<List<CampaignTemplate>>> {
    Ok(Json(List { data: crm.campaigns().templates(caller.actor()).await? }))
}

async fn create_template(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<Response> {
    let t = crm.campaigns().create_template(caller.actor(), input).await?;
    Ok(created(format!("/api/campaign-templates/{}", t.id), t))
}

async fn template(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<CampaignTemplate>> {
    Ok(Json(crm.campaigns().template(caller.actor(), id).await?))
}

async fn update_template(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult<Json<CampaignTemplate>> {
    Ok(Json(crm.campaigns().update_template(caller.actor(), id, input).await?))
}

async fn delete_template(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    crm.campaigns().delete_template(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A template's preview as answered: the rendered email, and where its HTML is shown as a
/// page of its own (the app's pages allow no inline style, which email HTML is made of).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewView {
    /// Subject.
    subject: String,
    /// HTML part.
    html: String,
    /// Text part.
    text: String,
    /// `/campaign-preview/<token>`: the HTML as a sandboxed page, for the caller, for ten
    /// minutes.
    html_url: String,
}

/// How long a preview's page link works.
const PREVIEW_LINK_SECS: i64 = 600;
const PREVIEW_PURPOSE: &str = "campaign-preview";

/// What a preview link signs: the template, the contact (nil: none), the caller, the end.
fn preview_data(template: Uuid, contact: Uuid, user: Uuid, until: i64) -> Vec<u8> {
    let mut d = Vec::with_capacity(56);
    for id in [template, contact, user] {
        d.extend_from_slice(id.as_bytes());
    }
    d.extend_from_slice(&until.to_be_bytes());
    d
}

/// `<template>.<contact>.<user>.<until>.<signature>`.
fn preview_token(crm: &Crm, template: Uuid, contact: Option<Uuid>, user: Uuid) -> ApiResult<String> {
    let contact = contact.unwrap_or_else(Uuid::nil);
    let until = crm.now().timestamp() + PREVIEW_LINK_SECS;
    let sig = crm.auth_settings()?.sealer.sign(PREVIEW_PURPOSE, &preview_data(template, contact, user, until));
    Ok(format!("{}.{}.{}.{until}.{sig}", template.simple(), contact.simple(), user.simple()))
}

/// The template, contact and user a preview link names, while it holds.
fn open_preview_token(crm: &Crm, token: &str) -> Option<(Uuid, Option<Uuid>, Uuid)> {
    let mut parts = token.splitn(5, '.');
    let mut id = || parts.next().and_then(|p| Uuid::try_parse(p).ok());
    let (template, contact, user) = (id()?, id()?, id()?);
    let until: i64 = parts.next()?.parse().ok()?;
    let sig = parts.next()?;
    let sealer = &crm.auth_settings().ok()?.sealer;
    if until < crm.now().timestamp()
        || !sealer.verify(PREVIEW_PURPOSE, &preview_data(template, contact, user, until), sig)
    {
        return None;
    }
    Some((template, (!contact.is_nil()).then_some(contact), user))
}

async fn preview_template(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Json<PreviewView>> {
    let input: PreviewInput = crate::extract::optional_json(&body)?;
    let p = crm.campaigns().preview_template(caller.actor(), id, input.contact_id).await?;
    let token = preview_token(&crm, id, input.contact_id, caller.actor().user_id.as_uuid())?;
    Ok(Json(PreviewView {
        subject: p.subject,
        html: p.html,
        text: p.text,
        html_url: format!("/campaign-preview/{token}"),
    }))
}

/// A preview's HTML as a page: rendered again for the user the link was made for, as
/// they may read now (a deactivated account's links stop). Its inline styles apply; it
/// runs no script, submits no form, and only this origin's pages may frame it.
async fn preview_page(State(crm): State<Crm>, ApiPath(token): ApiPath<String>) -> Response {
    let not_found = || {
        page(
            StatusCode::NOT_FOUND,
            "Preview expired",
            "<p>This preview link is not valid any more. Preview the template again.</p>",
        )
    };
    let Some((template, contact, user)) = open_preview_token(&crm, &token) else { return not_found() };
    use crm_core::store::StoreExt;
    let user = crm.store().get_as::<crm_core::User>(user).await.ok().flatten();
    let Some(user) = user.filter(|u| !u.meta.is_deleted() && u.status == crm_core::model::user::UserStatus::Active)
    else {
        return not_found();
    };
    match crm.campaigns().preview_template(&user.actor(), template, contact).await {
        Ok(p) => {
            let csp =
                "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; font-src https: data:; \
                 base-uri 'none'; form-action 'none'; frame-ancestors 'self'";
            let headers = [
                (header::CACHE_CONTROL, "private, no-store"),
                (header::CONTENT_SECURITY_POLICY, csp),
                (header::REFERRER_POLICY, "no-referrer"),
            ];
            (StatusCode::OK, headers, Html(p.html)).into_response()
        }
        Err(_) => not_found(),
    }
}

async fn test_send(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<TestSendInput>,
) -> ApiResult<StatusCode> {
    crm_core::policy::Policy::require(
        state.crm.policy(),
        caller.actor(),
        crm_core::policy::Resource::Campaigns,
        crm_core::policy::Action::Create,
    )?;
    let Some(sender) = &state.campaigns else {
        return Err(
            Error::invalid("to", "unavailable", "this server sends no campaigns (it runs with --no-worker)").into()
        );
    };
    sender.test_send(caller.actor(), id, &input.to, input.contact_id).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn segments(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<List<Segment>>> {
    Ok(Json(List { data: crm.campaigns().segments(caller.actor()).await? }))
}

async fn create_segment(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<SegmentInput>,
) -> ApiResult<Response> {
    let s = crm.campaigns().create_segment(caller.actor(), input).await?;
    Ok(created(format!("/api/segments/{}", s.id), s))
}

async fn segment(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Segment>> {
    Ok(Json(crm.campaigns().segment(caller.actor(), id).await?))
}

async fn update_segment(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<SegmentInput>,
) -> ApiResult<Json<Segment>> {
    Ok(Json(crm.campaigns().update_segment(caller.actor(), id, input).await?))
}

async fn delete_segment(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    crm.campaigns().delete_segment(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn preview_segment(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<SegmentPreview>> {
    Ok(Json(crm.campaigns().preview_segment(caller.actor(), id).await?))
}

async fn campaigns(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<List<Campaign>>> {
    Ok(Json(List { data: crm.campaigns().list(caller.actor()).await? }))
}

async fn create_campaign(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<CampaignInput>,
) -> ApiResult<Response> {
    let c = crm.campaigns().create(caller.actor(), input).await?;
    Ok(created(format!("/api/campaigns/{}", c.id), c))
}

async fn campaign(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Campaign>> {
    Ok(Json(crm.campaigns().get(caller.actor(), id).await?))
}

async fn update_campaign(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<CampaignInput>,
) -> ApiResult<Json<Campaign>> {
    Ok(Json(crm.campaigns().update(caller.actor(), id, input).await?))
}

async fn delete_campaign(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    crm.campaigns().delete(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn schedule(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Json<Campaign>> {
    let input: ScheduleInput = crate::extract::optional_json(&body)?;
    Ok(Json(crm.campaigns().schedule(caller.actor(), id, input.at).await?))
}

async fn pause(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Campaign>> {
    Ok(Json(crm.campaigns().pause(caller.actor(), id).await?))
}

async fn resume(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Campaign>> {
    Ok(Json(crm.campaigns().resume(caller.actor(), id).await?))
}

async fn cancel(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Campaign>> {
    Ok(Json(crm.campaigns().cancel(caller.actor(), id).await?))
}

async fn stats(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<CampaignStats>> {
    Ok(Json(crm.campaigns().stats(caller.actor(), id).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientParams {
    state: Option<String>,
    limit: Option<u32>,
}

async fn recipients(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(p): ApiQuery<RecipientParams>,
) -> ApiResult<Json<List<CampaignRecipient>>> {
    let state = match p.state.as_deref() {
        Some(s) => Some(s.parse::<RecipientState>().map_err(|_| {
            Error::invalid(
                "state",
                "invalid_value",
                format!("'{s}' is not one of {}", RecipientState::CHOICES.join(", ")),
            )
        })?),
        None => None,
    };
    let limit = p.limit.unwrap_or(100);
    if !(1..=10_000).contains(&limit) {
        return Err(Error::invalid("limit", "out_of_range", "between 1 and 10000").into());
    }
    Ok(Json(List { data: crm.campaigns().recipients(caller.actor(), id, state, limit).await? }))
}

async fn bounces(
    State(crm): State<Crm>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<BounceReport>> {
    crm_core::policy::Policy::require(
        crm.policy(),
        caller.actor(),
        crm_core::policy::Resource::Campaigns,
        crm_core::policy::Action::Update,
    )?;
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("application/json"));
    let list: Vec<Bounce> = if json {
        serde_json::from_slice(&body).map_err(|e| {
            Error::invalid(
                "body",
                "invalid_format",
                format!("a JSON list of bounces ({{email, kind: hard|soft|complaint}}): {e}"),
            )
        })?
    } else {
        dsn::parse(&body).ok_or_else(|| {
            Error::invalid("body", "not_a_report", "not a delivery status notification (multipart/report with message/delivery-status) nor an abuse report")
        })?
    };
    for (i, b) in list.iter().enumerate() {
        if b.email.is_empty() && b.recipient_id.is_none() {
            return Err(Error::invalid(format!("body[{i}].email"), "required", "an address or a recipientId").into());
        }
    }
    let matched = crm.campaign_bounces(&list, if json { "webhook" } else { "dsn" }).await?;
    Ok(Json(BounceReport { bounces: list, matched }))
}

async fn contact_history(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<List<ContactCampaign>>> {
    Ok(Json(List { data: crm.campaigns().contact_history(caller.actor(), id).await? }))
}

async fn consent(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Consent>> {
    Ok(Json(crm.campaigns().consent(caller.actor(), id).await?))
}

async fn set_consent(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<ConsentInput>,
) -> ApiResult<Json<Consent>> {
    Ok(Json(crm.campaigns().set_consent(caller.actor(), id, input).await?))
}

async fn request_confirmation(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Consent>> {
    let Some(sender) = &state.campaigns else {
        return Err(Error::invalid(
            "id",
            "unavailable",
            "this server sends no campaign email (it runs with --no-worker)",
        )
        .into());
    };
    Ok(Json(sender.request_confirmation(caller.actor(), id).await?))
}

async fn confirm_page(State(crm): State<Crm>, ApiPath(token): ApiPath<String>) -> Response {
    if crm_core::campaign::verify_token(&crm, crm_core::campaign::LinkKind::Confirm, &token, None).is_none() {
        return not_found_page();
    }
    page(
        StatusCode::OK,
        "Confirm your subscription",
        "<p>Do you want to receive our emails?</p><form method=\"post\"><button type=\"submit\">Yes, subscribe me</button></form>",
    )
}

async fn confirm(State(crm): State<Crm>, ApiPath(token): ApiPath<String>) -> ApiResult<Response> {
    if !crm.campaign_confirm(&token).await? {
        return Ok(not_found_page());
    }
    Ok(page(
        StatusCode::OK,
        "Subscription confirmed",
        "<p>Thank you: you will receive our emails. Every one of them has a link to stop them.</p>",
    ))
}

async fn suppressions(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<List<Suppression>>> {
    Ok(Json(List { data: crm.campaigns().suppressions(caller.actor()).await? }))
}

async fn suppress(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<SuppressionInput>,
) -> ApiResult<Response> {
    let s = crm.campaigns().suppress(caller.actor(), input).await?;
    Ok(created(format!("/api/suppressions/{}", s.id), s))
}

async fn unsuppress(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    crm.campaigns().unsuppress(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ----- the public pages ------------------------------------------------------------

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#222}}\
button{{font-size:1rem;padding:.6rem 1.2rem;border-radius:6px;border:1px solid #888;background:#fff;cursor:pointer}}</style></head>\
<body><h1>{title}</h1>{body}</body></html>"
    );
    // Its own styles and its own form may run; nothing else (no scripts, no frames).
    let csp =
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
    (status, [(header::CACHE_CONTROL, "no-store"), (header::CONTENT_SECURITY_POLICY, csp)], Html(html)).into_response()
}

fn not_found_page() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not recognised",
        "<p>This unsubscribe link is not valid. Copy the whole link from the email, or reply to the sender.</p>",
    )
}

async fn unsubscribe_page(State(crm): State<Crm>, ApiPath(token): ApiPath<String>) -> Response {
    if crm_core::campaign::verify_token(&crm, crm_core::campaign::LinkKind::Unsubscribe, &token, None).is_none() {
        return not_found_page();
    }
    // The page changes nothing by itself: link scanners that follow links must not
    // unsubscribe anyone; the button (or the mail client's one-click POST) does.
    page(
        StatusCode::OK,
        "Unsubscribe",
        "<p>Stop receiving these emails? You will get no more campaigns from us at this address.</p>\
<form method=\"post\"><input type=\"hidden\" name=\"List-Unsubscribe\" value=\"One-Click\"><button type=\"submit\">Unsubscribe</button></form>",
    )
}

async fn unsubscribe(State(crm): State<Crm>, ApiPath(token): ApiPath<String>, body: Bytes) -> ApiResult<Response> {
    let one_click = url::form_urlencoded::parse(&body).any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click");
    let source = if one_click { "one-click" } else { "unsubscribe-page" };
    if !crm.campaign_unsubscribe(&token, source).await? {
        return Ok(not_found_page());
    }
    Ok(page(StatusCode::OK, "You are unsubscribed", "<p>You will get no more campaigns from us at this address.</p>"))
}

/// A transparent 1×1 GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff,
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02,
    0x02, 0x44, 0x01, 0x00, 0x3b,
];

async fn open_pixel(State(crm): State<Crm>, ApiPath(token): ApiPath<String>) -> Response {
    if let Err(e) = crm.campaign_open(&token).await {
        tracing::warn!(error = %e, "recording an open failed");
    }
    ([(header::CONTENT_TYPE, "image/gif"), (header::CACHE_CONTROL, "no-store, private")], PIXEL).into_response()
}

#[derive(Debug, Deserialize)]
struct ClickParams {
    url: Option<String>,
}

async fn click(
    State(crm): State<Crm>,
    ApiPath(token): ApiPath<String>,
    ApiQuery(p): ApiQuery<ClickParams>,
) -> ApiResult<Response> {
    let Some(url) = p.url else { return Ok(not_found_page()) };
    match crm.campaign_click(&token, &url).await? {
        Some(to) => {
            Ok((StatusCode::FOUND, [(header::LOCATION, to), (header::CACHE_CONTROL, "no-store".into())])
                .into_response())
        }
        None => Ok(page(StatusCode::NOT_FOUND, "Link not recognised", "<p>This link is not valid.</p>")),
    }
}
