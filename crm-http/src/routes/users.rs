//! `/api/users`: accounts (admins; managers for `user`s of their team), profile,
//! avatar, settings, activity log, and the lifecycle (deactivate, restore, suspend,
//! unsuspend, erase).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post, put};
use axum::Json;
use crm_core::audit::AuditEvent;
use crm_core::model::settings::UserSettings;
use crm_core::model::JsonObject;
use crm_core::query::quote;
use crm_core::service::{NewUser, ProfileUpdate, UserPatch};
use crm_core::{Crm, DateOrTime, EntityKind, Page, UserId};
use serde::Deserialize;
use uuid::Uuid;

use super::records::{expected_version, if_match, list_query, or_current};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use crate::openapi::{list_params, query_param, Api, Spec};
use crate::views::UserView;
use utoipa::openapi::HttpMethod;

/// The routes and their document.
pub fn api() -> Api {
    const T: &str = "users";
    const ONE: &str = "/api/users/{id}";
    Api::new()
        .op(Spec::get("/api/users", T, "List users").query(list_params()).page::<UserView>("A page"), get(list))
        .op(
            Spec::post("/api/users", T, "Create a user (admins; managers for users of their team)")
                .body::<NewUser>()
                .example(serde_json::json!({"username": "grace", "email": "grace@example.com", "role": "user"}))
                .created::<UserView>("The account (pending, with an invitation mail, when no password is given)")
                .link("get", HttpMethod::Get, ONE)
                .link("patch", HttpMethod::Patch, ONE)
                .link("suspend", HttpMethod::Post, "/api/users/{id}/suspend")
                .link("unsuspend", HttpMethod::Post, "/api/users/{id}/unsuspend")
                .link("settings", HttpMethod::Get, "/api/users/{id}/settings")
                .link("logs", HttpMethod::Get, "/api/users/{id}/logs")
                .link("deactivate", HttpMethod::Delete, ONE)
                .link("erase", HttpMethod::Post, "/api/users/{id}/erase")
                .error(409, "The user name or email is taken (`conflict`)"),
            post(create),
        )
        .op(Spec::get(ONE, T, "Get a user").ok::<UserView>("The user"), get(one))
        .op(
            Spec::put(ONE, T, "Update a user (partial, like PATCH)")
                .body::<UserUpdate>()
                .if_match()
                .ok::<UserView>("The user"),
            put(update),
        )
        .op(
            Spec::patch(ONE, T, "Update a user")
                .body::<UserUpdate>()
                .example(serde_json::json!({"settings": {"language": "fr"}}))
                .if_match()
                .ok::<UserView>("The user"),
            patch(update),
        )
        .op(
            Spec::delete(ONE, T, "Deactivate a user (their sessions end; restorable)")
                .if_match()
                .empty(204, "Deactivated"),
            delete(deactivate),
        )
        .op(Spec::post("/api/users/{id}/restore", T, "Reactivate a user").ok::<UserView>("The user"), post(restore))
        .op(
            Spec::post("/api/users/{id}/suspend", T, "Suspend a user until a time or for good")
                .optional_body::<SuspendBody>()
                .example(serde_json::json!({"until": "2030-01-01T00:00:00Z", "reason": "Left for a sabbatical"}))
                .ok::<UserView>("The user"),
            post(suspend),
        )
        .op(Spec::post("/api/users/{id}/unsuspend", T, "Lift a suspension").ok::<UserView>("The user"), post(unsuspend))
        .op(
            Spec::post("/api/users/{id}/erase", T, "Erase a user's personal data (GDPR), keeping the audit chain")
                .optional_body::<EraseBody>()
                .ok::<UserView>("What is left of the account"),
            post(erase),
        )
        .op(
            Spec::get("/api/users/{id}/settings", T, "A user's settings").ok::<UserSettings>("The settings"),
            get(settings),
        )
        .op(
            Spec::put("/api/users/{id}/settings", T, "Change some settings (the given keys)")
                .body::<UserSettings>()
                .ok::<UserSettings>("The settings"),
            put(update_settings),
        )
        .op(
            Spec::patch("/api/users/{id}/settings", T, "Change some settings (the given keys)")
                .body::<UserSettings>()
                .ok::<UserSettings>("The settings"),
            patch(update_settings),
        )
        .op(
            Spec::get("/api/users/{id}/logs", T, "A user's activity log (audit events), newest first")
                .query(log_params())
                .page::<AuditEvent>("A page of events"),
            get(logs),
        )
        .op(
            Spec::put("/api/users/{id}/avatar", T, "Upload a profile picture (PNG, JPEG or WebP, up to 5 MB): the image as the body, or a form with the file in part `file`")
                .bytes_body("image/*")
                .multipart_file("file")
                .ok::<UserView>("The user"),
            put(set_avatar).layer(DefaultBodyLimit::max(crm_core::blob::avatar::MAX_BYTES + 64 * 1024)),
        )
        .op(
            Spec::get("/api/users/{id}/avatar", T, "The profile picture, a 256x256 PNG")
                .bytes("image/png", "The picture"),
            get(avatar),
        )
}

fn log_params() -> Vec<utoipa::openapi::path::Parameter> {
    use utoipa::openapi::schema::Type;
    let mut p: Vec<_> = list_params().into_iter().filter(|p| p.name != "includeDeleted").collect();
    p.push(query_param("action", Type::String, "Only this action (`user.login`, `contact.create`, …)"));
    p.push(query_param("since", Type::String, "Only events at or after this time (RFC 3339)"));
    p.push(query_param("until", Type::String, "Only events before this time (RFC 3339)"));
    p
}

/// The body of `PUT`/`PATCH /api/users/{id}`.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)] // documentation only: the handler reads the fields from a JSON map
struct UserUpdate {
    /// Login name.
    username: Option<String>,
    /// Email. Your own: needs `currentPassword`; the new address takes over only when the
    /// link sent to it is followed (the old one is told). Another's (admins): at once, and
    /// confirmed by a link.
    email: Option<String>,
    /// Role (admins only).
    role: Option<crm_core::Role>,
    /// Team (admins only); null removes it.
    #[schema(rename = "teamId")]
    team_id: Option<crm_core::TeamId>,
    /// Settings (the keys given).
    #[schema(value_type = Option<Object>)]
    settings: Option<JsonObject>,
    /// The version the change is based on (or `If-Match`).
    version: Option<i64>,
    /// A new password: yours with `currentPassword`; another's (admins) ends their sessions.
    password: Option<String>,
    /// Your current password, when you change your password or your email.
    #[schema(rename = "currentPassword")]
    current_password: Option<String>,
    /// `null` removes the picture (upload a new one to `/avatar`).
    #[schema(rename = "profilePicture", value_type = Option<()>)]
    profile_picture: Option<()>,
}

fn page(p: Page<crm_core::User>) -> serde_json::Value {
    let data: Vec<UserView> = p.data.into_iter().map(UserView::from).collect();
    let mut v = serde_json::json!({ "data": data, "pageInfo": p.page_info });
    if let Some(n) = p.total_count {
        v["totalCount"] = n.into();
    }
    v
}

async fn list(
    State(crm): State<Crm>,
    caller: Caller,
    ApiQuery(pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<serde_json::Value>> {
    let q = list_query(EntityKind::User, &pairs)?;
    Ok(Json(page(crm.users().list(caller.actor(), q).await?)))
}

async fn create(
    State(crm): State<Crm>,
    caller: Caller,
    ApiJson(input): ApiJson<NewUser>,
) -> ApiResult<impl IntoResponse> {
    let user = crm.users().create(caller.actor(), input).await?;
    Ok((StatusCode::CREATED, [("location", format!("/api/users/{}", user.id))], Json(UserView::from(user))))
}

async fn one(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<UserView>> {
    Ok(Json(crm.users().get(caller.actor(), UserId(id)).await?.into()))
}

/// `PUT`/`PATCH /api/users/{id}`: the profile fields of [`UserPatch`], plus `password`
/// (yours: with `currentPassword`; another's: admins) and `profilePicture: null` (removes
/// the picture; a new one is uploaded to `/avatar`).
async fn update(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<serde_json::Map<String, serde_json::Value>>,
) -> ApiResult<Json<UserView>> {
    let id = UserId(id);
    // The members that are not the profile's are read here; every bad member (theirs and
    // the profile's) is named in one answer.
    let mut errs = crm_core::error::Errors::new();
    let mut text = |field: &str, body: &mut serde_json::Map<String, serde_json::Value>| match body.remove(field) {
        None => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(other) => {
            errs.absorb(
                field,
                crm_core::Error::Malformed(vec![crm_core::FieldError::new(
                    field,
                    "invalid_type",
                    format!("expected a string, got {}", json_kind(&other)),
                )]),
            );
            None
        }
    };
    let password = text("password", &mut body);
    let current = text("currentPassword", &mut body);
    let picture = body.remove("profilePicture");
    if picture.as_ref().is_some_and(|p| !p.is_null()) {
        errs.absorb(
            "profilePicture",
            crm_core::Error::Malformed(vec![crm_core::FieldError::new(
                "profilePicture",
                "invalid_value",
                "profilePicture takes null here (it removes the picture); upload a picture to /avatar",
            )]),
        );
    }
    let patch = errs.take("", crm_core::decode::from_json::<UserPatch>(serde_json::Value::Object(body)));
    if current.is_some() && password.is_none() && patch.as_ref().is_some_and(|p| p.email.is_none()) {
        errs.add("currentPassword", "invalid_value", "currentPassword goes with password or email");
    }
    errs.finish()?;
    let Some(mut patch) = patch else { return Err(ApiError::bad_request("the body is not a user update")) };
    patch.version = expected_version(&headers, patch.version)?;
    patch.current_password = current;
    let update = ProfileUpdate { patch, password, remove_picture: picture.is_some() };
    let actor = caller.actor();
    let answer = crm.users().update_profile(actor, Some(caller.0.session_id), id, update).await;
    let user = or_current(answer, || async { crm.users().get(actor, id).await.map(UserView::from) }).await?;
    Ok(Json(user.into()))
}

/// The JSON type of a value, in words.
fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

async fn deactivate(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let (actor, id) = (caller.actor(), UserId(id));
    let answer = crm.users().deactivate(actor, id, if_match(&headers)?).await;
    or_current(answer, || async { crm.users().get(actor, id).await.map(UserView::from) }).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn restore(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<UserView>> {
    Ok(Json(crm.users().restore(caller.actor(), UserId(id)).await?.into()))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SuspendBody {
    /// When the suspension ends: an RFC 3339 time, or a date (the account is usable
    /// again from the start of that day, in the admin's time zone). None: for good.
    #[serde(default)]
    until: Option<DateOrTime>,
    #[serde(default)]
    reason: Option<String>,
}

async fn suspend(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(b): ApiJson<SuspendBody>,
) -> ApiResult<Json<UserView>> {
    Ok(Json(crm.users().suspend(caller.actor(), UserId(id), b.until, b.reason).await?.into()))
}

async fn unsuspend(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<UserView>> {
    Ok(Json(crm.users().unsuspend(caller.actor(), UserId(id)).await?.into()))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EraseBody {
    #[serde(default)]
    reassign_to: Option<UserId>,
}

async fn erase(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Bytes,
) -> ApiResult<Json<UserView>> {
    let b: EraseBody = crate::extract::optional_json(&body)?;
    Ok(Json(crm.users().erase(caller.actor(), UserId(id), b.reassign_to).await?.into()))
}

async fn settings(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<Json<UserSettings>> {
    Ok(Json(crm.users().settings(caller.actor(), UserId(id)).await?))
}

async fn update_settings(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(changes): ApiJson<JsonObject>,
) -> ApiResult<Json<UserSettings>> {
    Ok(Json(crm.users().update_settings(caller.actor(), UserId(id), changes).await?))
}

/// `?limit&after&action&since&until` (and the list grammar's `filter`).
async fn logs(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(mut pairs): ApiQuery<Vec<(String, String)>>,
) -> ApiResult<Json<Page<AuditEvent>>> {
    super::audit::shorthands(&mut pairs, |k, v| {
        Some(match k {
            "action" => format!("action[eq]:{}", quote(v)),
            "since" => format!("at[gte]:{}", quote(v)),
            "until" => format!("at[lt]:{}", quote(v)),
            _ => return None,
        })
    });
    let q = list_query(EntityKind::AuditEvent, &pairs)?;
    Ok(Json(crm.audit().for_user(caller.actor(), UserId(id), q).await?))
}

async fn set_avatar(
    State(crm): State<Crm>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    req: Request,
) -> ApiResult<Json<UserView>> {
    let image = crate::extract::uploaded_file(req, too_large).await?.bytes.to_vec();
    Ok(Json(crm.users().set_avatar(caller.actor(), UserId(id), image).await?.into()))
}

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the picture is larger than 5 MB")
}

async fn avatar(State(crm): State<Crm>, caller: Caller, ApiPath(id): ApiPath<Uuid>) -> ApiResult<impl IntoResponse> {
    match crm.users().avatar(caller.actor(), UserId(id)).await? {
        Some(png) => Ok(([(header::CONTENT_TYPE, "image/png"), (header::CACHE_CONTROL, "private, max-age=300")], png)),
        None => Err(crm_core::Error::NotFound { entity: "avatar" }.into()),
    }
}
