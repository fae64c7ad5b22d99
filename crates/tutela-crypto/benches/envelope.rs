//! Encrypt + decrypt of a 64-byte field: target under 1 µs (issue 3).
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "benchmark harness")]

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tutela_crypto::envelope::{open, seal, Cipher, Key};

fn bench(c: &mut Criterion) {
    let key = Key::generate().unwrap();
    let field = [0x41u8; 64];
    let aad = b"tutela/field/sub_0123456789abcdef0123456789abcdef/administrator/email/1";
    for cipher in [Cipher::Aes256Gcm, Cipher::Sm4Gcm] {
        c.bench_function(&format!("seal+open 64B/{}", cipher.as_str()), |b| {
            b.iter(|| {
                let blob = seal(cipher, &key, aad, black_box(&field)).unwrap();
                open(&key, aad, black_box(&blob)).unwrap()
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
