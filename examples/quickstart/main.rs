//! Quickstart: embed crm-rs on a SQLite file.
//!
//! Opens (creates) a SQLite store, bootstraps an admin, creates a company, a contact and
//! a deal, moves the deal through the pipeline, lists deals with a filter and prints the
//! result with the deal's stage history.
//!
//! ```text
//! cargo run --example quickstart [-- path/to/crm.db]
//! ```

use std::sync::Arc;

use crm_core::service::{NewCompany, NewContact, NewDeal, NewLineItem};
use crm_core::{Crm, DealStage, EntityKind, ListQuery, Money};
use crm_storage_sql::SqlStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A fresh file unless one is named, so the example can run again and again.
    let named = std::env::args().nth(1);
    let path = match &named {
        Some(p) => std::path::PathBuf::from(p),
        None => std::env::temp_dir().join(format!("crm-quickstart-{}.db", std::process::id())),
    };
    let store = SqlStore::connect(&format!("sqlite://{}", path.display())).await?;
    let crm = Crm::new(Arc::new(store));
    println!("store: {}", path.display());

    let admin = match crm.users().bootstrap_admin("admin", "admin@example.com").await {
        Ok(user) => user.actor(),
        Err(e) => return Err(format!("this store already has users ({e}); run without an argument").into()),
    };

    let acme = crm
        .companies()
        .create(&admin, NewCompany { name: "Acme Corp".into(), domain: Some("acme.com".into()), ..Default::default() })
        .await?;
    let ann = crm
        .contacts()
        .create(
            &admin,
            NewContact {
                name: "Ann Lee".into(),
                email: Some("Ann.Lee@Acme.com".into()),
                phone_number: Some("+44 20 7946 0958".into()),
                company_id: Some(acme.id),
                ..Default::default()
            },
        )
        .await?;
    println!(
        "contact: {} <{}> {}",
        ann.name,
        ann.email.as_ref().map_or("", |e| e.as_str()),
        ann.phone_number.as_ref().map_or("", |p| p.as_str())
    );

    let deal = crm
        .deals()
        .create(
            &admin,
            NewDeal {
                name: "Acme rollout".into(),
                currency: Some("EUR".into()),
                company_id: Some(acme.id),
                contact_ids: vec![ann.id],
                products: vec![
                    NewLineItem {
                        name: "Licences".into(),
                        quantity: Some(25),
                        unit_price: 12_000,
                        ..Default::default()
                    },
                    NewLineItem {
                        name: "Onboarding".into(),
                        quantity: Some(1),
                        unit_price: 150_000,
                        ..Default::default()
                    },
                ],
                ..Default::default()
            },
        )
        .await?;
    crm.deals()
        .create(&admin, NewDeal { name: "Side project".into(), amount: Some(50_000), ..Default::default() })
        .await?;

    println!("\npipeline of {:?}:", deal.name);
    for stage in [DealStage::Qualification, DealStage::Proposal, DealStage::Negotiation, DealStage::ClosedWon] {
        let moved = crm.deals().move_to(&admin, deal.id, stage).await?;
        println!(
            "  -> {:<14} probability {:>3}%  version {}",
            moved.stage.as_str(),
            moved.probability,
            moved.meta.version
        );
    }

    let won =
        ListQuery::new().filter_str(EntityKind::Deal, &format!("stage[eq]:closed_won,companyId[eq]:{}", acme.id))?;
    let page = crm.deals().list(&admin, won).await?;
    println!("\nwon deals at {}:", acme.name);
    for d in &page.data {
        let amount = d.amount.map(|a| Money::new(a, d.currency).to_string()).unwrap_or_default();
        println!("  {:<14} {:>14}  closed {}", d.name, amount, d.closed_at.map(|t| t.to_rfc3339()).unwrap_or_default());
    }

    println!("\nstage history:");
    for change in crm.deals().history(&admin, deal.id).await? {
        let from = change.from_stage.map_or("(new)", |s| s.as_str());
        println!("  {} {:<14} -> {}", change.changed_at.format("%H:%M:%S%.3f"), from, change.to_stage.as_str());
    }

    let chain = crm.verify_audit_chain().await?;
    println!("\naudit chain: {chain:?}");
    if named.is_none() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
    Ok(())
}
