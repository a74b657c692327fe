//! The backend conformance suite of crm-rs.
//!
//! Every case is a public async function taking a [`TestBackend`]; [`conformance_suite!`]
//! instantiates all of them as `#[tokio::test]`s in the module it is called in, so a
//! backend's test names read `sqlite::<case>`, `postgres::<case>`, `mongo::<case>`. Each
//! test gets a fresh database (a new SQLite file, a new PostgreSQL schema). A backend
//! whose server cannot be reached fails the test; nothing is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use crm_core::auth::{AuthSettings, JwtConfig, JwtKeys, Sealer};
use crm_core::mail::{DeliveryReport, MailConfig, MailWorker};
use crm_core::service::{NewTeam, NewUser};
use crm_core::{Actor, Crm, FakeClock, Role, Store, TeamId, User};

pub mod backends;
pub mod cases;
pub mod idp;
pub mod mail;
pub mod pdf;
pub mod receiver;
pub mod ubl;

/// The access-token signing key of the harness (tests forge tokens with it).
pub const TEST_JWT_SECRET: &[u8] = b"test-secret-test-secret-test-secret-0123456789";
/// Its key id.
pub const TEST_KID: &str = "test-1";
/// The public URL links in emails start with.
pub const PUBLIC_URL: &str = "https://crm.test.example";

/// An address no other test (or earlier run) uses, so the shared SMTP sink can tell
/// the messages of each test apart.
pub fn unique_email(name: &str) -> String {
    // The random tail of a v7 id.
    let id = uuid::Uuid::now_v7().simple().to_string();
    format!("{name}.{}@example.com", &id[id.len() - 14..])
}

/// A store under test, with the few backend-specific powers the suite needs.
#[async_trait]
pub trait TestBackend: Send + Sync {
    /// The store.
    fn store(&self) -> Arc<dyn Store>;
    /// Changes the `action` of the audit event at `seq` behind crm-core's back.
    async fn tamper_audit_event(&self, seq: i64);
    /// Deletes the audit event at `seq` behind crm-core's back.
    async fn delete_audit_event(&self, seq: i64);
    /// Drops an index behind crm-core's back (the schema check must notice).
    async fn drop_index(&self, table: &str, index: &str);
    /// Drops a column behind crm-core's back; `false` where columns are not typed
    /// (MongoDB), so there is nothing to drop.
    async fn drop_column(&self, table: &str, column: &str) -> bool;
    /// Another store on the same data, as a second process would open it (its own
    /// connections and writer).
    async fn second_store(&self) -> Arc<dyn Store>;
    /// Removes the test database.
    async fn cleanup(&self);
    /// Readies a freshly bulk-loaded database for reads (PostgreSQL: `ANALYZE`, as its
    /// autovacuum would within a minute). Benchmarks call it after seeding.
    async fn after_bulk_load(&self) {}
    /// Where the data lives, for a person to look at.
    fn location(&self) -> String {
        String::new()
    }
    /// Everything the database holds, as an operator would see it on disk or in a dump
    /// (SQLite: the database file and its WAL; PostgreSQL: `pg_dump` of the schema;
    /// MongoDB: every document of the database).
    async fn raw_dump(&self) -> String;
}

/// A CRM on a fresh store, with a fake clock and an admin.
pub struct Harness {
    /// The engine.
    pub crm: Crm,
    /// Its clock.
    pub clock: Arc<FakeClock>,
    /// The bootstrap admin.
    pub admin: Actor,
    /// The admin's account.
    pub admin_user: User,
}

/// The audit keys of the harness's engine.
pub fn test_audit_keys() -> crm_core::audit::AuditKeys {
    crm_core::audit::AuditKeys::new(crm_core::audit::AuditKey::with_id("test", &[3; 32]).expect("audit key"))
}

/// The billing field keys of the harness's engine.
pub fn test_billing_keys() -> crm_core::billing::crypt::FieldKeys {
    crm_core::billing::crypt::FieldKeys::new(&[5; 32])
}

impl Harness {
    /// Another engine on the same store (and clock) with these billing keys, as a server
    /// restarted with them would be.
    pub fn engine_with_billing_keys(
        &self,
        backend: &dyn TestBackend,
        keys: crm_core::billing::crypt::FieldKeys,
    ) -> Crm {
        let jwt = JwtKeys::new(JwtConfig::default(), TEST_KID, TEST_JWT_SECRET).expect("jwt keys");
        Crm::builder(backend.store())
            .clock(self.clock.clone())
            .auth(AuthSettings::with_keys(jwt, Sealer::new(&[42; 32])))
            .audit_keys(test_audit_keys())
            .billing_keys(keys)
            .build()
    }

    /// Builds the harness on a backend.
    pub async fn new(backend: &dyn TestBackend) -> Self {
        Self::with_config(backend, crm_core::CrmConfig::default()).await
    }

    /// Builds the harness on a backend with these service settings.
    pub async fn with_config(backend: &dyn TestBackend, config: crm_core::CrmConfig) -> Self {
        Self::on_store(backend.store(), config).await
    }

    /// Builds the harness on a store of the test's own (a backend's, wrapped).
    pub async fn on_store(store: Arc<dyn Store>, config: crm_core::CrmConfig) -> Self {
        let (crm, clock) = Self::engine(store, config);
        let admin_user = crm.users().bootstrap_admin("admin", "admin@example.com").await.expect("bootstrap admin");
        Harness { admin: admin_user.actor(), admin_user, crm, clock }
    }

    /// The harness on a backend that holds a harness's CRM already (a copy of one): its
    /// admin is the one found there.
    pub async fn on_copy(backend: &dyn TestBackend) -> Self {
        use crm_core::StoreExt;
        let (crm, clock) = Self::engine(backend.store(), crm_core::CrmConfig::default());
        let q = crm_core::query::StoreQuery { filter: None, sort: vec![], limit: 1_000, include_deleted: false };
        let users = backend.store().list_as::<User>(&q).await.expect("users");
        let admin_user = users.into_iter().find(|u| u.username == "admin").expect("the copied admin");
        Harness { admin: admin_user.actor(), admin_user, crm, clock }
    }

    fn engine(store: Arc<dyn Store>, config: crm_core::CrmConfig) -> (Crm, Arc<FakeClock>) {
        let clock = Arc::new(FakeClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 9, 0, 0).single().unwrap_or_default()));
        let keys = JwtKeys::new(JwtConfig::default(), TEST_KID, TEST_JWT_SECRET).expect("jwt keys");
        let auth = AuthSettings::with_keys(keys, Sealer::new(&[42; 32]));
        let crm = Crm::builder(store)
            .clock(clock.clone())
            .auth(auth)
            .audit_keys(test_audit_keys())
            .billing_keys(test_billing_keys())
            .config(config)
            .build();
        (crm, clock)
    }

    /// Creates a team.
    pub async fn team(&self, name: &str) -> TeamId {
        self.crm
            .teams()
            .create(&self.admin, NewTeam { name: name.into(), ..Default::default() })
            .await
            .expect("create team")
            .id
    }

    /// Sends every queued email to the SMTP sink (see [`mail`]).
    pub async fn deliver_mail(&self) -> DeliveryReport {
        let config = MailConfig {
            public_url: PUBLIC_URL.into(),
            from: "crm-rs <no-reply@crm.test.example>".parse().expect("from address"),
            app_name: "crm-rs".into(),
        };
        let worker = MailWorker::new(self.crm.clone(), Arc::new(mail::sink_mailer()), config);
        worker.run_once().await.expect("mail delivery")
    }

    /// Creates a user and returns the actor acting as them.
    pub async fn user(&self, name: &str, role: Role, team: Option<TeamId>) -> Actor {
        self.crm
            .users()
            .create(
                &self.admin,
                NewUser {
                    username: name.into(),
                    email: format!("{name}@example.com"),
                    role: Some(role),
                    team_id: team,
                    password: None,
                },
            )
            .await
            .expect("create user")
            .actor()
    }
}

/// Instantiates every conformance case as a test using `$factory` (an async fn returning
/// a boxed backend). Call it inside `mod <backend> { … }`.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@cases $factory;
            schema_agrees_with_the_declaration,
            idempotency_keys_run_once_and_replay,
            schema_round_trips_every_kind,
            analytics_snapshot_follows_scope_and_changes,
            analytics_snapshot_reads_every_batch,
            analytics_refresh_equals_a_full_reload,
            store_lists_chosen_columns,
            store_scans_in_bulk,
            saved_report_crud_and_validation,
            saved_report_sharing_and_scope,
            saved_dashboard_cards_and_sharing,
            contact_crud,
            company_crud,
            deal_crud_with_line_items,
            deal_history_is_strictly_ordered,
            task_crud,
            interaction_crud,
            team_and_user_crud,
            patch_null_clears_and_absent_keeps,
            soft_delete_hides_and_restore_returns,
            include_deleted_needs_manager,
            purge_removes_for_good_with_children,
            purge_company_clears_references,
            validation_reports_every_field,
            rejected_input_writes_nothing,
            contact_import_is_all_or_nothing,
            references_must_be_live_and_visible,
            contact_email_unique_among_live,
            company_domain_unique,
            username_and_user_email_unique,
            stale_version_is_a_conflict,
            no_lost_update_under_20_writers,
            concurrent_failures_stay_with_their_caller,
            two_writers_keep_one_chain,
            copy_carries_the_whole_crm_and_resumes,
            one_replica_holds_a_scheduler_lease,
            filter_eq_neq_in,
            filter_ordering_operators,
            filter_text_patterns,
            filter_null_tests,
            filter_references_and_lists,
            filter_boolean_nesting,
            filter_rejects_unknown_fields_and_operators,
            search_matches_name_email_phone_domain,
            sort_by_several_fields_with_nulls,
            long_texts_sort_by_every_character,
            cursor_paging_1000_rows_with_concurrent_inserts,
            cursor_paging_descending_nullable_sort,
            sub_millisecond_times_page_whole,
            cursor_from_another_sort_is_rejected,
            limit_bounds_and_total_count,
            failed_write_leaves_no_audit_or_outbox,
            every_mutation_is_audited_with_a_diff,
            domain_events_reach_the_outbox,
            audit_chain_verifies_and_finds_an_edit,
            audit_chain_finds_a_removed_event,
            audit_chain_needs_its_key,
            audit_lists_by_record_and_actor,
            deal_stages_history_and_probability,
            task_assign_and_complete,
            awkward_strings_round_trip,
            control_characters_are_rejected,
            users_see_only_their_own_records,
            managers_see_their_team,
            out_of_scope_is_not_found,
            users_cannot_give_records_away,
            nobody_raises_their_own_role,
            only_one_bootstrap_admin,
            change_counter_moves_on_every_change,
            free_form_objects_reject_operator_keys,
            injection_attempts_stay_data,
            register_confirm_login_refresh_logout,
            refresh_reuse_revokes_the_family,
            access_token_attacks_are_refused_and_audited,
            lockout_and_its_expiry,
            no_account_enumeration,
            lockout_waits_per_client_under_an_account_ceiling,
            reset_token_is_single_use_and_ends_sessions,
            change_password_ends_other_sessions,
            sessions_list_revoke_and_logout_all,
            suspended_users_live_token_is_rejected,
            raising_own_role_is_refused_and_audited,
            raw_tokens_are_absent_from_the_database,
            invitation_sets_the_first_password,
            emails_are_localized,
            failed_sends_are_retried,
            weak_hashes_are_upgraded_at_login,
            email_change_is_reverified,
            settings_are_validated,
            activity_log_by_user,
            oidc_login_with_real_rs256_tokens,
            oidc_auto_link_needs_both_emails_verified,
            oauth_link_and_unlink,
            facebook_login_via_debug_token,
            avatar_upload,
            erase_removes_personal_data_and_keeps_the_chain,
            expired_sessions_and_tokens_are_purged,
            claims_never_overlap,
            webhooks_are_signed_retried_and_replayed,
            webhooks_refuse_internal_addresses,
            notifications_follow_preferences,
            dispatch_survives_a_second_dispatcher,
            chat_posts_reach_slack_and_teams,
            task_reminders_come_once,
            digests_gather_a_day,
            preference_matrix,
            slack_bots_post_with_chat_post_message,
            account_mail_goes_before_a_backlog,
            campaign_reaches_each_recipient_once,
            unsubscribe_and_tracking_links,
            bounces_suppress_and_count,
            a_dead_sender_never_sends_twice,
            smtp_errors_pause_and_resume_continues,
            campaign_inputs_and_roles,
            double_opt_in_confirms_by_link,
            billing_data_is_sealed_at_rest,
            invoice_from_won_deal_to_paid,
            numbers_are_gapless_under_concurrent_issuers,
            quotes_credit_notes_and_voids,
            billing_inputs_and_roles,
            subscriptions_bill_each_period_once,
            accounting_exports_follow_en16931,
            totals_convert_at_the_invoice_date,
            documents_are_laid_out_and_emailed,
            record_exports_follow_query_and_scope,
            batches_apply_all_or_each,
            imports_upsert_report_and_resume,
            bulk_reads_come_in_pieces,
            an_edit_during_an_import_does_not_stop_it,
            merges_relink_everything_and_undo_restores_it,
            attachments_follow_their_record,
        );
    };
    (@cases $factory:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let backend: std::sync::Arc<dyn $crate::TestBackend> = std::sync::Arc::new(*$factory().await);
                let run = backend.clone();
                // The case runs in its own task so that the database is removed even when
                // it fails; then its panic is the test's.
                let outcome = tokio::spawn(async move { $crate::cases::$case(&*run).await }).await;
                backend.cleanup().await;
                if let Err(e) = outcome {
                    std::panic::resume_unwind(e.into_panic());
                }
            }
        )*
    };
}
