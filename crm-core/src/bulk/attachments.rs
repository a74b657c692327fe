//! Files attached to contacts, companies, deals and tasks.
//!
//! The bytes go to the engine's [`crate::blob::BlobStore`] (a local directory, or any
//! `object_store` backend such as S3) under `attachments/<id>`; an [`Attachment`] row
//! says what they are. The media type is found from the bytes, never taken from the
//! client, and only [`ALLOWED_TYPES`] (and plain UTF-8 text) are accepted, up to
//! [`MAX_ATTACHMENT_BYTES`]. An attachment is reached through its record: adding or
//! removing one needs the right to update the record, reading one the right to read it;
//! while the record is soft-deleted its files are hidden, and purging the record removes
//! them, bytes included.

use bytes::Bytes;
use serde_json::json;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::model::attachment::{blob_key, Attachment};
use crate::model::Record;
use crate::policy::{Action, Actor};
use crate::query::{id_key, Cmp, Direction, Filter, Predicate, StoreQuery};
use crate::schema::{to_row, EntityKind, Value};
use crate::service::Crm;
use crate::store::{Changeset, StoreExt, Write};
use crate::{Company, Contact, Deal, Task};

/// The kinds of record files can be attached to.
pub const ATTACHABLE: [EntityKind; 4] = [EntityKind::Contact, EntityKind::Company, EntityKind::Deal, EntityKind::Task];

/// The largest file accepted: 25 MiB.
pub const MAX_ATTACHMENT_BYTES: usize = 25 * 1024 * 1024;

/// The most files one record holds.
pub const MAX_PER_RECORD: u32 = 500;

/// The media types accepted, as found from the bytes: documents, spreadsheets,
/// presentations, pictures, archives, sound and video. Text is accepted too when it is
/// valid UTF-8 (typed by its extension: `text/csv`, `text/calendar`, … else `text/plain`;
/// HTML, XML and SVG are text too, so never shown as a page or a picture).
pub const ALLOWED_TYPES: [&str; 27] = [
    "application/pdf",
    "application/rtf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text",
    "application/vnd.oasis.opendocument.spreadsheet",
    "application/vnd.oasis.opendocument.presentation",
    "application/epub+zip",
    "application/zip",
    "application/gzip",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/tiff",
    "image/bmp",
    "image/heif",
    "image/avif",
    "audio/mpeg",
    "audio/x-wav",
    "audio/ogg",
    "video/mp4",
    "video/quicktime",
];

/// The media type of a file, from its bytes (and, for text, its name's extension); an
/// error on `file` for an empty file or a type not accepted.
pub fn sniff(bytes: &[u8], file_name: &str) -> Result<String> {
    if bytes.is_empty() {
        return Err(Error::invalid("file", "required", "the file is empty"));
    }
    // Markup (HTML, XML, SVG) is kept as the text it is: never served as a page or a
    // picture that could run script.
    let markup = |m: &str| m.starts_with("text/") || m.ends_with("xml") || m.contains("+xml");
    if let Some(t) = infer::get(bytes).filter(|t| !markup(t.mime_type())) {
        let mime = t.mime_type();
        if ALLOWED_TYPES.contains(&mime) {
            return Ok(mime.to_string());
        }
        return Err(Error::invalid(
            "file",
            "unsupported_type",
            format!(
                "files of type {mime} cannot be attached; documents, pictures, archives, sound, video and text can"
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).ok().filter(|s| !s.contains('\0'));
    if text.is_none() {
        return Err(Error::invalid(
            "file",
            "unsupported_type",
            "the file's type is not recognised; documents, pictures, archives, sound, video and UTF-8 text can be attached",
        ));
    }
    let ext = file_name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    Ok(match ext.as_str() {
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "md" | "markdown" => "text/markdown",
        "ics" => "text/calendar",
        "vcf" => "text/vcard",
        "eml" => "message/rfc822",
        _ => "text/plain",
    }
    .to_string())
}

/// A file name fit to keep and to send back: the last path segment, without control
/// characters or quotes, at most 200 characters; `file` when nothing is left.
pub fn clean_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String =
        last.chars().filter(|c| !c.is_control() && !matches!(c, '"' | '<' | '>' | '|' | '*' | '?')).take(200).collect();
    let cleaned = cleaned.trim().trim_start_matches('.').to_string();
    if cleaned.is_empty() {
        "file".into()
    } else {
        cleaned
    }
}

fn parent_filter(parent: Uuid) -> Result<Filter> {
    let column = EntityKind::Attachment
        .column("parent_id")
        .ok_or_else(|| Error::internal_msg("attachments have no parent_id"))?;
    Ok(Filter::Cmp(Cmp { column, pred: Predicate::Eq(Value::Uuid(parent)) }))
}

impl Crm {
    /// Checks that the actor may do `action` on record `id` of `kind` (an attachable
    /// kind); a record outside their scope, or soft-deleted, is not found.
    async fn authorize_parent(&self, actor: &Actor, kind: EntityKind, id: Uuid, action: Action) -> Result<()> {
        match kind {
            EntityKind::Contact => self.authorized::<Contact>(actor, id, action).await.map(|_| ()),
            EntityKind::Company => self.authorized::<Company>(actor, id, action).await.map(|_| ()),
            EntityKind::Deal => self.authorized::<Deal>(actor, id, action).await.map(|_| ()),
            EntityKind::Task => self.authorized::<Task>(actor, id, action).await.map(|_| ()),
            _ => Err(Error::internal_msg(format!("files cannot be attached to a {}", kind.name()))),
        }
    }

    /// The files of a record, oldest first.
    async fn files_of(&self, parent: Uuid, limit: u32) -> Result<Vec<Attachment>> {
        let kind = EntityKind::Attachment;
        let created = kind.column("created_at").ok_or_else(|| Error::internal_msg("attachments have no created_at"))?;
        let q = StoreQuery {
            filter: Some(parent_filter(parent)?),
            sort: vec![
                crate::query::SortKey { column: created, direction: Direction::Asc },
                id_key(kind, Direction::Asc),
            ],
            limit,
            include_deleted: true,
        };
        self.store().list_as::<Attachment>(&q).await
    }

    /// Attaches a file to record `parent` of `kind`: its type found from the bytes, its
    /// bytes stored, then its row, audited as `attachment.created` (with an outbox event).
    pub async fn add_attachment(
        &self,
        actor: &Actor,
        kind: EntityKind,
        parent: Uuid,
        file_name: &str,
        bytes: Bytes,
    ) -> Result<Attachment> {
        if !ATTACHABLE.contains(&kind) {
            return Err(Error::internal_msg(format!("files cannot be attached to a {}", kind.name())));
        }
        self.authorize_parent(actor, kind, parent, Action::Update).await?;
        if bytes.len() > MAX_ATTACHMENT_BYTES {
            return Err(Error::invalid(
                "file",
                "too_large",
                format!("a file has at most {} MiB", MAX_ATTACHMENT_BYTES / (1024 * 1024)),
            ));
        }
        let file_name = clean_file_name(file_name);
        let content_type = sniff(&bytes, &file_name)?;
        let held = self.store().count(EntityKind::Attachment, Some(&parent_filter(parent)?), true).await?;
        if held >= u64::from(MAX_PER_RECORD) {
            return Err(Error::Conflict {
                message: format!("a record holds at most {MAX_PER_RECORD} files; remove some first"),
                field: Some("file".into()),
            });
        }
        let now = self.now();
        let a = Attachment {
            id: self.new_id(now),
            parent_type: kind.name().to_string(),
            parent_id: parent,
            file_name,
            content_type,
            size: bytes.len() as i64,
            sha256: hex::encode(Sha256::digest(&bytes)),
            uploaded_by: Some(actor.user_id.as_uuid()),
            created_at: now,
            version: 1,
        };
        self.blobs().put(&a.blob_key(), bytes).await?;
        let summary = json!({
            "parentType": a.parent_type, "parentId": a.parent_id, "fileName": a.file_name,
            "contentType": a.content_type, "size": a.size, "sha256": a.sha256,
        });
        let mut cs = Changeset::default();
        cs.writes.push(Write::Insert { kind: EntityKind::Attachment, row: to_row(&a)? });
        let mut payload = summary.clone();
        payload["id"] = json!(a.id);
        payload["actorId"] = json!(actor.user_id);
        cs.writes.push(self.event("attachment.created".into(), EntityKind::Attachment, a.id, payload)?);
        cs.audit.push(self.audit_event(
            actor,
            "attachment.created".into(),
            EntityKind::Attachment,
            Some(a.id),
            summary,
        ));
        if let Err(e) = self.store().apply(cs).await {
            // No row points at the bytes: take them back.
            let _ = self.blobs().delete(&a.blob_key()).await;
            return Err(e);
        }
        Ok(a)
    }

    /// The files attached to record `parent` of `kind`, oldest first.
    pub async fn attachments(&self, actor: &Actor, kind: EntityKind, parent: Uuid) -> Result<Vec<Attachment>> {
        self.authorize_parent(actor, kind, parent, Action::Read).await?;
        self.files_of(parent, MAX_PER_RECORD).await
    }

    /// An attachment whose record the actor may do `action` on.
    async fn attachment_for(&self, actor: &Actor, id: Uuid, action: Action) -> Result<Attachment> {
        let a = self.load::<Attachment>(id).await?.ok_or(Error::NotFound { entity: "attachment" })?;
        let kind = ATTACHABLE
            .into_iter()
            .find(|k| k.name() == a.parent_type)
            .ok_or_else(|| Error::internal_msg(format!("an attachment of a {}", a.parent_type)))?;
        match self.authorize_parent(actor, kind, a.parent_id, action).await {
            Err(Error::NotFound { .. }) => Err(Error::NotFound { entity: "attachment" }),
            other => other.map(|()| a),
        }
    }

    /// An attachment's description, if the actor may read its record.
    pub async fn attachment(&self, actor: &Actor, id: Uuid) -> Result<Attachment> {
        self.attachment_for(actor, id, Action::Read).await
    }

    /// An attachment and its bytes, if the actor may read its record.
    pub async fn attachment_content(&self, actor: &Actor, id: Uuid) -> Result<(Attachment, Bytes)> {
        let a = self.attachment_for(actor, id, Action::Read).await?;
        let bytes = self.blobs().get(&a.blob_key()).await?.ok_or_else(|| {
            Error::internal_msg(format!("the bytes of attachment {id} are missing from the file store"))
        })?;
        Ok((a, bytes))
    }

    /// Removes an attachment, bytes included (the right to update its record needed),
    /// audited as `attachment.deleted`.
    pub async fn delete_attachment(&self, actor: &Actor, id: Uuid) -> Result<()> {
        let a = self.attachment_for(actor, id, Action::Update).await?;
        let summary =
            json!({"parentType": a.parent_type, "parentId": a.parent_id, "fileName": a.file_name, "sha256": a.sha256});
        let mut cs = Changeset::default();
        cs.writes.push(Write::Purge { kind: EntityKind::Attachment, column: "id", id });
        let mut payload = summary.clone();
        payload["id"] = json!(id);
        payload["actorId"] = json!(actor.user_id);
        cs.writes.push(self.event("attachment.deleted".into(), EntityKind::Attachment, id, payload)?);
        cs.audit.push(self.audit_event(actor, "attachment.deleted".into(), EntityKind::Attachment, Some(id), summary));
        self.store().apply(cs).await?;
        self.blobs().delete(&blob_key(id)).await
    }

    /// The writes that purge the files of record `parent`, and the blob keys to delete
    /// once they are committed.
    pub(crate) async fn purge_files_of(&self, parent: Uuid) -> Result<(Vec<Write>, Vec<String>)> {
        let files = self.files_of(parent, u32::MAX).await?;
        if files.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let keys = files.iter().map(Attachment::blob_key).collect();
        Ok((vec![Write::Purge { kind: EntityKind::Attachment, column: "parent_id", id: parent }], keys))
    }
}

/// Is `rec` one files can be attached to (for the purge path)?
pub(crate) fn attachable<R: Record>() -> bool {
    ATTACHABLE.contains(&R::KIND)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::expect_used)]

    use super::*;

    #[test]
    fn types_come_from_the_bytes_not_the_name() {
        assert_eq!(sniff(b"%PDF-1.7\n...", "x.txt").expect("pdf"), "application/pdf");
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "x.pdf").expect("png"), "image/png");
        assert_eq!(sniff("Prénom;Nom\nZoé;Dupont\n".as_bytes(), "people.CSV").expect("csv"), "text/csv");
        assert_eq!(sniff(b"<script>alert(1)</script>", "x.html").expect("text"), "text/plain");
        let svg = b"<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>";
        assert_eq!(sniff(svg, "logo.svg").expect("svg"), "text/plain", "never a picture that runs script");
        let e = sniff(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x02\0", "report.pdf").expect_err("elf");
        assert_eq!(e.field_errors()[0].field, "file");
        assert_eq!(e.field_errors()[0].code, "unsupported_type");
        assert_eq!(sniff(b"MZ\x90\0\x03\0\0\0", "a.doc").expect_err("exe").field_errors()[0].code, "unsupported_type");
        assert_eq!(sniff(b"", "a.txt").expect_err("empty").field_errors()[0].code, "required");
        assert_eq!(
            sniff(&[0xff, 0xfe, 0, 1, 2], "a.txt").expect_err("binary").field_errors()[0].code,
            "unsupported_type"
        );
    }

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_file_name("../../etc/passwd"), "passwd");
        assert_eq!(clean_file_name("C:\\Users\\zoe\\Contrat signé.pdf"), "Contrat signé.pdf");
        assert_eq!(clean_file_name("a\"b\r\n.pdf"), "ab.pdf");
        assert_eq!(clean_file_name(".."), "file");
        assert_eq!(clean_file_name(""), "file");
    }
}
