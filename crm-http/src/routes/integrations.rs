//! `/api/webhooks` (admins: outgoing webhook subscriptions, their secrets and delivery
//! logs), `/api/admin/deliveries` (admins: the delivery queue, replay) and
//! `/api/notifications` (each user's in-app notifications).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::Json;
use crm_core::model::delivery::{Delivery, Notification};
use crm_core::query::quote;
use crm_core::service::{
    ChannelOwner, ChatChannelInput, ChatChannelView, WebhookInput, WebhookView, WebhookWithSecret,
};
use crm_core::TeamId;
use crm_core::{Crm, EntityKind, Page};
use serde::Serialize;
use uuid::Uuid;

use super::audit::shorthands;
use super::records::list_query;
use crate::error::ApiResult;
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::openapi::{list_params, query_param, Api, Spec};

/// The routes and their document.
pub fn api() -> Api {
    const W: &str = "webhooks";
    const ONE: &str = "/api/webhooks/{id}";
    const D: &str = "deliveries";
    const N: &str = "notifications";
    Api::new()
        .op(
            Spec::get("/api/webhooks", W, "Every outgoing webhook subscription (admins)")
                .list::<WebhookView>("The subscriptions"),
            get(list),
        )
        .op(
            Spec::post("/api/webhooks", W, "Subscribe a URL to event types; the answer carries its signing secret (Standard Webhooks, `whsec_…`)")
                .body::<WebhookInput>()
                .example(serde_json::json!({"url": "https://hooks.example.com/crm", "events": ["deal.*", "contact.created"], "description": "Sync to the warehouse"}))
                .created::<WebhookWithSecret>("The subscription and its secret"),
            post(create),
        )
        .op(
            Spec::get("/api/webhooks/event-types", W, "The event types a webhook can subscribe to")
                .ok::<EventTypes>("The event types"),
            get(event_types),
        )
        .op(Spec::get(ONE, W, "One subscription").ok::<WebhookView>("The subscription"), get(one))
        .op(
            Spec::patch(ONE, W, "Change a subscription's URL, event types, description, or pause it (`active: false`)")
                .body::<WebhookInput>()
                .example(serde_json::json!({"active": false}))
                .ok::<WebhookView>("The subscription"),
            axum::routing::patch(update),
        )
        .op(Spec::delete(ONE, W, "Remove a subscription").empty(204, "Removed"), delete(remove))
        .op(
            Spec::get("/api/webhooks/{id}/secret", W, "A subscription's signing secret").ok::<WebhookWithSecret>("The subscription and its secret"),
            get(secret),
        )
        .op(
            Spec::post("/api/webhooks/{id}/rotate-secret", W, "A new signing secret; the old one keeps signing beside it for 24 hours")
                .ok::<WebhookWithSecret>("The subscription and its new secret"),
            post(rotate),
        )
        .op(
            Spec::get("/api/webhooks/{id}/deliveries", W, "A subscription's delivery log, newest first")
                .query(delivery_params())
                .page::<Delivery>("A page of deliveries"),
            get(hook_deliveries),
        )
        .op(
            Spec::get("/api/admin/deliveries", D, "The delivery queue, newest first: mail, webhooks, notifications (admins)")
                .query(delivery_params())
                .page::<Delivery>("A page of deliveries"),
            get(deliveries),
        )
        .op(Spec::get("/api/admin/deliveries/{id}", D, "One delivery").ok::<Delivery>("The delivery"), get(delivery))
        .op(
            Spec::post("/api/admin/deliveries/{id}/replay", D, "Send a delivery again (a dead one, or a delivered one): pending, due now, attempts counted afresh")
                .ok::<Delivery>("The delivery"),
            post(replay),
        )
        .op(
            Spec::get("/api/notifications", N, "Your in-app notifications, newest first")
                .query(notification_params())
                .page::<Notification>("A page of notifications"),
            get(notifications),
        )
        .op(
            Spec::get("/api/notifications/unread-count", N, "How many of your notifications are unread")
                .ok::<UnreadCount>("The count"),
            get(unread_count),
        )
        .op(
            Spec::post("/api/notifications/{id}/read", N, "Mark one of your notifications read")
                .ok::<Notification>("The notification"),
            post(read),
        )
        .op(
            Spec::post("/api/notifications/read-all", N, "Mark all your notifications read")
                .ok::<UnreadCount>("How many were unread"),
            post(read_all),
        )
        .op(
            Spec::get("/api/notifications/channels", N, "Your Slack and Teams webhooks (where your chat notifications go)")
                .list::<ChatChannelView>("Your channels"),
            get(my_channels),
        )
        .op(
            Spec::put("/api/notifications/channels/{provider}", N, "Set where your Slack (an incoming webhook, or a bot token and channel) or Teams (a workflow webhook) notifications go")
                .path_choices("provider", "The chat service", &["slack", "teams"])
                .body::<ChatChannelInput>()
                .example(serde_json::json!({"url": "https://hooks.slack.com/services/T000/B000/XXXX"}))
                .ok::<ChatChannelView>("The channel"),
            put(set_my_channel),
        )
        .op(
            Spec::delete("/api/notifications/channels/{provider}", N, "Remove your Slack or Teams webhook")
                .path_choices("provider", "The chat service", &["slack", "teams"])
                .empty(204, "Removed"),
            delete(remove_my_channel),
        )
        .op(
            Spec::get("/api/teams/{id}/channels", W, "A team's Slack and Teams webhooks: its deals won and lost are posted there (admins)")
                .list::<ChatChannelView>("The team's channels"),
            get(team_channels),
        )
        .op(
            Spec::put("/api/teams/{id}/channels/{provider}", W, "Set where a team's Slack (an incoming webhook, or a bot token and channel) or Teams (a workflow webhook) posts go (admins)")
                .path_choices("provider", "The chat service", &["slack", "teams"])
                .body::<ChatChannelInput>()
                .ok::<ChatChannelView>("The channel"),
            put(set_team_channel),
        )
        .op(
            Spec::delete("/api/teams/{id}/channels/{provider}", W, "Remove a team's Slack or Teams webhook (admins)")
                .path_choices("provider", "The chat service", &["slack", "teams"])
                .empty(204, "Removed"),
            delete(remove_team_channel),
        )
}

fn delivery_params() -> Vec<utoipa::openapi::path::Parameter> {
    use utoipa::openapi::schema::Type;
    let mut p: Vec<_> = list_params().into_iter().filter(|p| p.name != "includeDeleted" && p.name != "q").collect();
    p.push(query_param("state", Type::String, "Only deliveries in this state: pending, delivered, dead"));
    p.push(query_param("consumer", Type::String, "Only this consumer: mail, webhook, email, slack, teams"));
    p.push(query_param("topic", Type::String, "Only this event type"));
    p
}

fn notification_params() -> Vec<utoipa::openapi::path::Parameter> {
    use utoipa::openapi::schema::Type;
    let mut p: Vec<_> = list_params().into_iter().filter(|p| p.name != "includeDeleted" && p.name != "q").collect();
    p.push(query_param("unread", Type::Boolean, "Only unread ones (`true`)"));
    p
}

/// The event types of webhooks.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EventTypes {
    /// `contact.created`, …, `deal.stage_changed`, `task.assigned`; subscriptions may also
    /// name `<kind>.*` and `*`.
    pub data: Vec<String>,
}

/// A count of unread notifications.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UnreadCount {
    /// The count.
    pub count: u64,
}

/// `{"data": [...]}`.
#[derive(Debug, Serialize)]
struct List<T> {
    data: Vec<T>,
}

async fn list(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<List<WebhookView>>> {
    Ok(Json(List { data: crm.webhooks().list(caller.actor()).await? }))
}

async fn create(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<WebhookInput>,
) -> ApiResult<impl IntoResponse> {
    let made = crm.webhooks().create(caller.actor(), input).await?;
    Ok((StatusCode::CREATED, [("location", format!("/api/webhooks/{}", made.webhook.id))], Json(made)))
}

async fn event_types(_caller: Caller) -> Json<EventTypes> {
    Json(EventTypes { data: crm_core::delivery::signing::event_types() })
}

async fn one(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<WebhookView>> {
    Ok(Json(crm.webhooks().get(caller.actor(), id).await?))
}

async fn update(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(input): ApiJson<WebhookInput>,
) -> ApiResult<Json<WebhookView>> {
    Ok(Json(crm.webhooks().update(caller.actor(), id, input).await?))
}

async fn remove(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<StatusCode> {
    crm.webhooks().delete(caller.actor(), id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn secret(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WebhookWithSecret>> {
    Ok(Json(crm.webhooks().secret(caller.actor(), id).await?))
}

async fn rotate(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<WebhookWithSecret>> {
    Ok(Json(crm.webhooks().rotate_secret(caller.actor(), id).await?))
}

fn delivery_filters(pairs: &mut Vec<(String, String)>) {
    shorthands(pairs, |k, v| {
        Some(match k {
            "state" => format!("state[eq]:{}", quote(v)),
            "consumer" => format!("consumer[eq]:{}", quote(v)),
            "topic" => format!("topic[eq]:{}", quote(v)),
            _ => return None,
        })
    });
}

async fn hook_deliveries(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(mut pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Page<Delivery>>> {
    delivery_filters(&mut pairs);
    let q = list_query(EntityKind::Delivery, &pairs)?;
    Ok(Json(crm.webhooks().deliveries(caller.actor(), id, q).await?))
}

async fn deliveries(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(mut pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Page<Delivery>>> {
    delivery_filters(&mut pairs);
    let q = list_query(EntityKind::Delivery, &pairs)?;
    Ok(Json(crm.deliveries().list(caller.actor(), q, None).await?))
}

async fn delivery(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Delivery>> {
    Ok(Json(crm.deliveries().get(caller.actor(), id).await?))
}

async fn replay(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Delivery>> {
    Ok(Json(crm.deliveries().replay(caller.actor(), id).await?))
}

async fn notifications(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(mut pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Page<Notification>>> {
    let mut unread = false;
    let mut bad = None;
    pairs.retain(|(k, v)| {
        if k != "unread" {
            return true;
        }
        match v.as_str() {
            "true" => unread = true,
            "false" => unread = false,
            _ => bad = Some(v.clone()),
        }
        false
    });
    if let Some(v) = bad {
        return Err(crm_core::Error::invalid("unread", "invalid_value", format!("'{v}' is not true or false")).into());
    }
    let q = list_query(EntityKind::Notification, &pairs)?;
    Ok(Json(crm.notifications().list(caller.actor(), q, unread).await?))
}

async fn unread_count(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<UnreadCount>> {
    Ok(Json(UnreadCount { count: crm.notifications().unread_count(caller.actor()).await? }))
}

async fn read(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<Notification>> {
    Ok(Json(crm.notifications().read(caller.actor(), id).await?))
}

async fn read_all(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<UnreadCount>> {
    Ok(Json(UnreadCount { count: crm.notifications().read_all(caller.actor()).await? }))
}

async fn my_channels(State(crm): State<Crm>, caller: Caller) -> ApiResult<Json<List<ChatChannelView>>> {
    let owner = ChannelOwner::User(caller.actor().user_id);
    Ok(Json(List { data: crm.chat_channels().list(caller.actor(), owner).await? }))
}

async fn set_my_channel(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(provider): ApiPath<String>,
    ApiJson(input): ApiJson<ChatChannelInput>,
) -> ApiResult<Json<ChatChannelView>> {
    let owner = ChannelOwner::User(caller.actor().user_id);
    Ok(Json(crm.chat_channels().set(caller.actor(), owner, &provider, input).await?))
}

async fn remove_my_channel(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(provider): ApiPath<String>,
) -> ApiResult<StatusCode> {
    crm.chat_channels().delete(caller.actor(), ChannelOwner::User(caller.actor().user_id), &provider).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn team_channels(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<List<ChatChannelView>>> {
    Ok(Json(List { data: crm.chat_channels().list(caller.actor(), ChannelOwner::Team(TeamId(id))).await? }))
}

async fn set_team_channel(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath((id, provider)): ApiPath<(Uuid, String)>,
    ApiJson(input): ApiJson<ChatChannelInput>,
) -> ApiResult<Json<ChatChannelView>> {
    let owner = ChannelOwner::Team(TeamId(id));
    Ok(Json(crm.chat_channels().set(caller.actor(), owner, &provider, input).await?))
}

async fn remove_team_channel(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath((id, provider)): ApiPath<(Uuid, String)>,
) -> ApiResult<StatusCode> {
    crm.chat_channels().delete(caller.actor(), ChannelOwner::Team(TeamId(id)), &provider).await?;
    Ok(StatusCode::NO_CONTENT)
}
