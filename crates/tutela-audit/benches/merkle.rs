//! Sealing throughput of the Merkle tree (leaf hash + append), target 200,000 entries/s,
//! and proof generation at 1M leaves.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark harness")]

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use tutela_audit::{HashAlg, MerkleTree};

fn bench(c: &mut Criterion) {
    // A realistic canonical entry (~250 bytes).
    let entry = b"tutela-audit-entry-v1\naud_01a2244bd10e7f2a9c1b2c3d4e5f6a7b\n1795909207000000\ntok_01a22441c8ed7708bdfe986bd49b136a\ntenant_admin\nten_01a22441c8eb7336821364319d085025\nsub_01a22441c8ec74eca1932ce855193b7e\nadministrator\naccount_admin\nread\nallow\npurpose_declared\nR8".to_vec();
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Elements(10_000));
    for alg in [HashAlg::Sha256, HashAlg::Sm3] {
        g.bench_function(format!("10k entries/{}", alg.as_str()), |b| {
            b.iter_batched(
                || MerkleTree::new(alg),
                |mut t| {
                    for _ in 0..10_000 {
                        t.append(black_box(&entry));
                    }
                    t
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
    let mut big = MerkleTree::new(HashAlg::Sha256);
    for i in 0u32..1_000_000 {
        big.append_leaf_hash(HashAlg::Sha256.leaf(&i.to_be_bytes()));
    }
    c.bench_function("inclusion proof @1M", |b| {
        b.iter(|| big.inclusion_proof(black_box(777_777), 1_000_000).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
