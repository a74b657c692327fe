//! Password hashing at the OWASP argon2id parameters (m = 19,456 KiB, t = 2, p = 1):
//! one hash, one verify, and the hash rate of the bounded pool under 16 callers.
//!
//! `cargo bench -p crm-benches --bench auth`.

#![allow(clippy::expect_used)] // a benchmark that cannot run its set-up should stop loudly

use criterion::{criterion_main, Criterion, Throughput};
use crm_core::auth::{PasswordHasher, Verified};

fn auth(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    let hasher = PasswordHasher::owasp();
    let stored = rt.block_on(hasher.hash("correct horse battery staple")).expect("hash");
    let mut g = c.benchmark_group("argon2id_owasp");
    g.sample_size(20);
    g.bench_function("hash", |b| b.to_async(&rt).iter(|| hasher.hash("correct horse battery staple")));
    g.bench_function("verify", |b| {
        b.to_async(&rt).iter(|| async {
            let v = hasher.verify("correct horse battery staple", &stored).await.expect("verify");
            assert_eq!(v, Verified::Ok { rehash: false });
        })
    });
    g.throughput(Throughput::Elements(16));
    g.bench_function("verify_16_callers", |b| {
        b.to_async(&rt).iter(|| async {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..16 {
                let (h, s) = (hasher.clone(), stored.clone());
                set.spawn(async move { h.verify("correct horse battery staple", &s).await });
            }
            while let Some(done) = set.join_next().await {
                done.expect("join").expect("verify");
            }
        })
    });
    g.finish();
}

mod harness {
    #![allow(missing_docs)] // criterion_group! makes an undocumented public fn
    criterion::criterion_group!(benches, super::auth);
}

criterion_main!(harness::benches);
