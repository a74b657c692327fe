//! The OpenAPI 3.1 document, built from the same calls that build the router: every
//! route is added with [`Api::op`], which takes the route's [`Spec`] and its handler
//! together, so a route cannot be served without being documented. Schemas come from the
//! Rust types (`utoipa::ToSchema`, derived in crm-core behind its `openapi` feature).

use std::collections::BTreeMap;

use axum::routing::MethodRouter;
use axum::Router;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, ComponentsBuilder, ObjectBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{
    Content, InfoBuilder, OpenApi, OpenApiBuilder, Paths, Ref, RefOr, Required, ResponseBuilder, Tag,
};
use utoipa::ToSchema;

use crate::AppState;

/// The problem document's schema name.
const PROBLEM: &str = "Problem";
/// The bearer security scheme's name.
const BEARER: &str = "bearer";

/// A router and the document of its routes, built together.
pub struct Api {
    router: Router<AppState>,
    paths: Paths,
    schemas: BTreeMap<String, RefOr<Schema>>,
}

impl Default for Api {
    fn default() -> Self {
        Self::new()
    }
}

impl Api {
    /// Nothing yet.
    pub fn new() -> Self {
        Self { router: Router::new(), paths: Paths::new(), schemas: BTreeMap::new() }
    }

    /// Adds one operation: its document and its handler (whose method must be the spec's).
    pub fn op(mut self, spec: Spec, handler: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(&spec.path, handler);
        self.add(spec);
        self
    }

    fn add(&mut self, spec: Spec) {
        self.schemas.extend(spec.schemas.iter().cloned());
        let (path, method, op) = spec.build();
        self.paths.add_path_operation(path, vec![method], op);
    }

    /// Joins another set of routes.
    pub fn merge(mut self, other: Api) -> Self {
        self.router = self.router.merge(other.router);
        self.paths.merge(other.paths);
        self.schemas.extend(other.schemas);
        self
    }

    /// The router and the document.
    pub fn split(self) -> (Router<AppState>, OpenApi) {
        let doc = document(self.paths, self.schemas);
        (self.router, doc)
    }
}

fn document(paths: Paths, schemas: BTreeMap<String, RefOr<Schema>>) -> OpenApi {
    let components = ComponentsBuilder::new()
        .schemas_from_iter(schemas)
        .schema(PROBLEM, problem_schema())
        .security_scheme(
            BEARER,
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("The access token of `POST /api/auth/login`"))
                    .build(),
            ),
        )
        .schema_from::<crm_core::FieldError>()
        .build();
    let tags = [
        "health",
        "auth",
        "users",
        "audit",
        "contacts",
        "companies",
        "deals",
        "tasks",
        "interactions",
        "teams",
        "reports",
    ]
    .into_iter()
    .map(Tag::new);
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("crm-rs")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "The REST API of crm-rs. Errors are `application/problem+json` with a stable `code`; lists \
                     are cursor pages filtered with the grammar `field[op]:value` joined by `,` (and) and `|` (or).",
                ))
                .build(),
        )
        .paths(paths)
        .components(Some(components))
        .tags(Some(tags))
        .build()
}

/// One documented answer: status, description, body (schema and media type), and
/// whether it carries `Location`.
struct Answer(u16, &'static str, Vec<(RefOr<Schema>, &'static str)>, bool);

/// One operation's document.
pub struct Spec {
    method: HttpMethod,
    path: String,
    tag: &'static str,
    summary: &'static str,
    secured: bool,
    optional_auth: bool,
    params: Vec<Parameter>,
    body: Option<(RefOr<Schema>, &'static str, bool)>,
    /// More media types the body may come in (a form upload beside a raw image).
    other_media: Vec<(&'static str, RefOr<Schema>)>,
    example: Option<serde_json::Value>,
    links: Vec<(&'static str, HttpMethod, String)>,
    responses: Vec<Answer>,
    errors: Vec<(u16, &'static str)>,
    schemas: Vec<(String, RefOr<Schema>)>,
}

macro_rules! constructors {
    ($($name:ident => $method:ident),*) => {$(
        /// An operation of this method on this path (axum's `{param}` syntax), in a tag,
        /// with a one-line summary. It needs an access token unless made [`Spec::public`].
        pub fn $name(path: &str, tag: &'static str, summary: &'static str) -> Self {
            Self::new(HttpMethod::$method, path, tag, summary)
        }
    )*};
}

impl Spec {
    constructors!(get => Get, post => Post, put => Put, patch => Patch, delete => Delete);

    fn new(method: HttpMethod, path: &str, tag: &'static str, summary: &'static str) -> Self {
        let params = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let (schema, doc) = if name == "id" {
                    (string_format(SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::Uuid)), "The record's id")
                } else if name == "token" {
                    (
                        ObjectBuilder::new().schema_type(SchemaType::new(Type::String)).into(),
                        "The signed token of the link",
                    )
                } else {
                    (ObjectBuilder::new().schema_type(SchemaType::new(Type::String)).into(), "The provider")
                };
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(Some(doc))
                    .schema(Some(schema))
                    .build()
            })
            .collect();
        Self {
            method,
            path: path.to_string(),
            tag,
            summary,
            secured: true,
            optional_auth: false,
            params,
            body: None,
            other_media: vec![],
            example: None,
            links: vec![],
            responses: vec![],
            errors: vec![],
            schemas: vec![],
        }
    }

    /// Open to anonymous callers.
    pub fn public(mut self) -> Self {
        self.secured = false;
        self
    }

    /// Takes an access token but works without one too.
    pub fn optional_auth(mut self) -> Self {
        self.optional_auth = true;
        self
    }

    fn schema_of<T: ToSchema>(&mut self) -> RefOr<Schema> {
        let name = T::name().to_string();
        let mut deps = Vec::new();
        T::schemas(&mut deps);
        self.schemas.extend(deps);
        self.schemas.push((name.clone(), T::schema()));
        RefOr::Ref(Ref::from_schema_name(name))
    }

    /// A JSON body of this type.
    pub fn body<T: ToSchema>(mut self) -> Self {
        let s = self.schema_of::<T>();
        self.body = Some((s, "application/json", true));
        self
    }

    /// A JSON body of this type that may be left out.
    pub fn optional_body<T: ToSchema>(mut self) -> Self {
        let s = self.schema_of::<T>();
        self.body = Some((s, "application/json", false));
        self
    }

    /// A typical body, for readers and for the fuzzer's first cases.
    pub fn example(mut self, example: serde_json::Value) -> Self {
        self.example = Some(example);
        self
    }

    /// The record this operation answers can be used by another operation (an OpenAPI
    /// link: its `id` parameter is the answer's `id`), so readers and fuzzers can chain them.
    pub fn link(mut self, name: &'static str, method: HttpMethod, path: &str) -> Self {
        self.links.push((name, method, path.to_string()));
        self
    }

    /// A body of raw bytes of this media type.
    pub fn bytes_body(mut self, media: &'static str) -> Self {
        self.body = Some((binary(), media, true));
        self
    }

    /// The body may also be JSON of this type.
    pub fn also_json<T: ToSchema>(mut self) -> Self {
        let s = self.schema_of::<T>();
        self.other_media.push(("application/json", s));
        self
    }

    /// The body may also be a `multipart/form-data` form whose part `part` is the file.
    pub fn multipart_file(mut self, part: &str) -> Self {
        let form = ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::Object))
            .property(part, binary())
            .required(part)
            .into();
        self.other_media.push(("multipart/form-data", form));
        self
    }

    /// Query parameters.
    pub fn query(mut self, params: Vec<Parameter>) -> Self {
        self.params.extend(params);
        self
    }

    /// A path parameter that takes one of these values.
    pub fn path_choices(mut self, name: &str, doc: &str, values: &[&str]) -> Self {
        let schema: RefOr<Schema> = ObjectBuilder::new()
            .schema_type(SchemaType::new(Type::String))
            .enum_values(Some(values.iter().copied()))
            .into();
        for p in self.params.iter_mut().filter(|p| p.name == name && p.parameter_in == ParameterIn::Path) {
            p.description = Some(doc.to_string());
            p.schema = Some(schema.clone());
        }
        self
    }

    /// Takes `If-Match` (the record version the change is based on).
    pub fn if_match(mut self) -> Self {
        self.params.push(header_param(
            "If-Match",
            "The version the change is based on (`\"3\"`); a stale one answers 409 version_conflict",
        ));
        self.errors.push((409, "The record changed since that version (`version_conflict`, with `current`)"));
        self
    }

    /// Answers 200 with a JSON document of this type.
    pub fn ok<T: ToSchema>(self, what: &'static str) -> Self {
        self.ok_status::<T>(200, what)
    }

    /// Answers this status with a JSON document of this type.
    pub fn ok_status<T: ToSchema>(mut self, status: u16, what: &'static str) -> Self {
        let s = self.schema_of::<T>();
        self.responses.push(Answer(status, what, vec![(s, "application/json")], false));
        self
    }

    /// Answers 201 with the created record and its `Location`.
    pub fn created<T: ToSchema>(mut self, what: &'static str) -> Self {
        let s = self.schema_of::<T>();
        self.responses.push(Answer(201, what, vec![(s, "application/json")], true));
        self
    }

    /// Answers 200 with a cursor page of `T` (`data`, `pageInfo`, `totalCount`).
    pub fn page<T: ToSchema>(mut self, what: &'static str) -> Self {
        let item = self.schema_of::<T>();
        let name = format!("{}Page", T::name());
        let page = ObjectBuilder::new()
            .description(Some(format!("A page of {}", T::name())))
            .property("data", ArrayBuilder::new().items(item))
            .required("data")
            .property("pageInfo", Ref::from_schema_name("PageInfo"))
            .required("pageInfo")
            .property(
                "totalCount",
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Integer))
                    .minimum(Some(0.0))
                    .description(Some("Every match, when `count=true` was asked")),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        self.schema_of::<crm_core::query::PageInfo>();
        self.ok_named(name, page, what)
    }

    /// Answers 200 with `{"data": [T…]}`.
    pub fn list<T: ToSchema>(mut self, what: &'static str) -> Self {
        let item = self.schema_of::<T>();
        let name = format!("{}List", T::name());
        let list = ObjectBuilder::new()
            .property("data", ArrayBuilder::new().items(item))
            .required("data")
            .additional_properties(Some(AdditionalProperties::FreeForm(false)));
        self.ok_named(name, list, what)
    }

    /// Answers 200 with a JSON document of a schema built here, registered under `name`.
    fn ok_named(mut self, name: String, schema: ObjectBuilder, what: &'static str) -> Self {
        self.schemas.push((name.clone(), schema.into()));
        let body = RefOr::Ref(Ref::from_schema_name(name));
        self.responses.push(Answer(200, what, vec![(body, "application/json")], false));
        self
    }

    /// Answers this status with no body.
    pub fn empty(mut self, status: u16, what: &'static str) -> Self {
        self.responses.push(Answer(status, what, vec![], false));
        self
    }

    /// Answers `status` with raw bytes of this media type (a page for people, say).
    pub fn bytes_status(mut self, status: u16, media: &'static str, what: &'static str) -> Self {
        self.responses.push(Answer(status, what, vec![(binary(), media)], false));
        self
    }

    /// Answers 200 with raw bytes of this media type.
    pub fn bytes(mut self, media: &'static str, what: &'static str) -> Self {
        self.responses.push(Answer(200, what, vec![(binary(), media)], false));
        self
    }

    /// Answers 200 with a file in one of these media types.
    pub fn files(mut self, media: &[&'static str], what: &'static str) -> Self {
        self.responses.push(Answer(200, what, media.iter().map(|m| (binary(), *m)).collect(), false));
        self
    }

    /// Answers 200 with this schema (documents that are not Rust types).
    pub fn ok_schema(mut self, media: &'static str, schema: impl Into<RefOr<Schema>>, what: &'static str) -> Self {
        self.responses.push(Answer(200, what, vec![(schema.into(), media)], false));
        self
    }

    /// Answers 200 with a JSON document of this type, or the same as a file in one of
    /// these media types (chosen by a `format` query parameter or `Accept`).
    pub fn ok_or_files<T: ToSchema>(mut self, what: &'static str, media: &[&'static str]) -> Self {
        let s = self.schema_of::<T>();
        let mut content = vec![(s, "application/json")];
        content.extend(media.iter().map(|m| (binary(), *m)));
        self.responses.push(Answer(200, what, content, false));
        self
    }

    /// Another error this operation answers.
    pub fn error(mut self, status: u16, what: &'static str) -> Self {
        self.errors.push((status, what));
        self
    }

    fn build(self) -> (String, HttpMethod, utoipa::openapi::path::Operation) {
        let id = operation_id(&self.method, &self.path);
        let mut op = OperationBuilder::new()
            .tag(self.tag)
            .summary(Some(self.summary))
            .operation_id(Some(id))
            .parameters(Some(self.params.clone()));
        let writes = matches!(self.method, HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch);
        if writes && self.secured && !self.path.starts_with("/api/auth/") {
            op = op.parameter(header_param(
                "Idempotency-Key",
                "Replays the first answer to a retried write with the same key and body (24 h)",
            ));
        }
        let has_body = self.body.is_some();
        if let Some((schema, media, required)) = self.body {
            let body = RequestBodyBuilder::new()
                .required(Some(if required { Required::True } else { Required::False }))
                .content(media, {
                    let mut c = Content::new(Some(schema));
                    c.example = self.example;
                    c
                });
            let body = self
                .other_media
                .into_iter()
                .fold(body, |b, (media, schema)| b.content(media, Content::new(Some(schema))));
            op = op.request_body(Some(body.build()));
        }
        let answered: Vec<u16> = self.responses.iter().map(|r| r.0).collect();
        for Answer(status, what, content, location) in self.responses {
            let mut r = ResponseBuilder::new().description(what);
            if status / 100 == 2 && !content.is_empty() && !matches!(self.method, HttpMethod::Get) {
                for (name, method, path) in &self.links {
                    let link = LinkBuilder::new()
                        .operation_id(operation_id(method, path))
                        .parameter("id", "$response.body#/id")
                        .build();
                    r = r.link(*name, link);
                }
            }
            for (schema, media) in content {
                r = r.content(media, Content::new(Some(schema)));
            }
            if location {
                r = r.header(
                    "Location",
                    HeaderBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(SchemaType::new(Type::String))))
                        .description(Some("Where the new resource is"))
                        .build(),
                );
            }
            op = op.response(status.to_string(), r.build());
        }
        let mut errors: BTreeMap<u16, &str> = BTreeMap::new();
        errors.insert(400, "Malformed request: bad JSON, unknown field, bad path or query (`validation_failed`)");
        if self.secured {
            errors.insert(401, "Missing, expired or revoked access token (`unauthenticated`)");
            errors.insert(403, "The caller's role may not do this (`forbidden`)");
        }
        if self.path.contains("{id}") {
            errors.insert(404, "No such record, or one outside the caller's scope (`not_found`)");
        }
        if has_body {
            errors.insert(413, "The body is too large (`payload_too_large`)");
            errors.insert(415, "The body is not JSON (`unsupported_media_type`)");
            errors.insert(422, "Invalid values, every bad field named in `errors` (`validation_failed`)");
        }
        errors.insert(429, "Too many requests (`rate_limited`), with `Retry-After`");
        errors.insert(500, "Internal error (`internal`)");
        errors.insert(503, "The request took too long (`timeout`) or the store is unavailable");
        errors.extend(self.errors);
        errors.retain(|s, _| !answered.contains(s));
        for (status, what) in errors {
            op = op.response(status.to_string(), problem_response(what));
        }
        op = op.response("default", problem_response("Any other error, as a problem document"));
        if self.optional_auth {
            op = op.security(SecurityRequirement::default());
        }
        if self.secured || self.optional_auth {
            op = op.security(SecurityRequirement::new(BEARER, Vec::<String>::new()));
        }
        (self.path, self.method, op.build())
    }
}

fn operation_id(method: &HttpMethod, path: &str) -> String {
    let mut id = match method {
        HttpMethod::Get => "get",
        HttpMethod::Post => "post",
        HttpMethod::Put => "put",
        HttpMethod::Patch => "patch",
        HttpMethod::Delete => "delete",
        _ => "other",
    }
    .to_string();
    for seg in path.split('/').filter(|s| !s.is_empty() && *s != "api") {
        let seg = seg.trim_start_matches('{').trim_end_matches('}');
        let seg = if path.contains(&format!("{{{seg}}}")) { format!("by-{seg}") } else { seg.to_string() };
        for word in seg.split(['-', '_']) {
            let mut c = word.chars();
            if let Some(f) = c.next() {
                id.push(f.to_ascii_uppercase());
                id.extend(c);
            }
        }
    }
    id
}

fn problem_response(what: &str) -> utoipa::openapi::Response {
    ResponseBuilder::new()
        .description(what)
        .content("application/problem+json", Content::new(Some(Ref::from_schema_name(PROBLEM))))
        .build()
}

fn string_format(format: SchemaFormat) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(SchemaType::new(Type::String)).format(Some(format)).into()
}

fn binary() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::new(Type::String))
        .content_media_type("application/octet-stream")
        .into()
}

fn header_param(name: &str, doc: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(doc))
        .schema(Some(ObjectBuilder::new().schema_type(SchemaType::new(Type::String))))
        .build()
}

/// A query parameter.
pub fn query_param(name: &str, ty: Type, doc: &str) -> Parameter {
    ParameterBuilder::new()
        .name(name)
        .parameter_in(ParameterIn::Query)
        .required(Required::False)
        .description(Some(doc))
        .schema(Some(ObjectBuilder::new().schema_type(SchemaType::new(ty))))
        .build()
}

/// The query parameters of a list.
pub fn list_params() -> Vec<Parameter> {
    vec![
        query_param(
            "filter",
            Type::String,
            "Filter expression: `field[op]:value` terms joined by `,` (and) or `|` (or), e.g. \
             `lifecycleStage[eq]:lead,name[ilike]:ann`",
        ),
        query_param("q", Type::String, "Free-text search"),
        query_param(
            "sort",
            Type::String,
            "Sort keys, comma-separated: `name`, `-createdAt` or `createdAt[desc]` for descending",
        ),
        query_param("after", Type::String, "The `endCursor` of the previous page"),
        ParameterBuilder::new()
            .name("limit")
            .parameter_in(ParameterIn::Query)
            .required(Required::False)
            .description(Some("Page size"))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(SchemaType::new(Type::Integer))
                    .minimum(Some(1.0))
                    .maximum(Some(f64::from(crm_core::query::MAX_LIMIT))),
            ))
            .build(),
        query_param("includeDeleted", Type::Boolean, "Include soft-deleted records (managers and admins)"),
        query_param("count", Type::Boolean, "Count every match (`totalCount`)"),
    ]
}

fn problem_schema() -> RefOr<Schema> {
    let s = |d: &str| ObjectBuilder::new().schema_type(SchemaType::new(Type::String)).description(Some(d));
    ObjectBuilder::new()
        .description(Some("An error (RFC 9457)"))
        .property("type", s("`/problems/<code>`"))
        .required("type")
        .property("title", s("The status's reason phrase"))
        .required("title")
        .property("status", ObjectBuilder::new().schema_type(SchemaType::new(Type::Integer)))
        .required("status")
        .property("detail", s("What happened, for people"))
        .required("detail")
        .property("code", s("The stable machine code"))
        .required("code")
        .property("errors", ArrayBuilder::new().items(Ref::from_schema_name("FieldError")))
        .property(
            "current",
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Object))
                .description(Some("The record as it is now, on a version conflict (when the caller may read it)")),
        )
        .property(
            "currentVersion",
            ObjectBuilder::new()
                .schema_type(SchemaType::new(Type::Integer))
                .description(Some("The record's current version, on a version conflict")),
        )
        .property("requestId", s("The request's id (also the `x-request-id` header)"))
        .into()
}
