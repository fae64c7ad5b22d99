//! Scanner throughput on a fixed mixed zh/en sample (the corpus benchmark with the public
//! generator is `bench/pii.sh`).
#![allow(clippy::unwrap_used, reason = "benchmark harness")]

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let sample = "2026-11-28 09:00:01 INFO c.a.u.UserService 用户登录成功 uid=10123456789 ip=148.100.110.84 mobile=13912345678\n\
                  {\"name\": \"张伟\", \"email\": \"zhang.wei@example.com\", \"card_no\": \"6222 0212 3456 7890 128\", \"ts\": 1732780800000}\n\
                  客户反馈退款一直没到账，联系人：欧阳娜娜，请核实身份证11010519491231002X是否为本人\n\
                  Dear Emily Clark, your ticket TK-20261128-00042 was updated. version v2.3.14 trace 3f786850e387550fdab836ed7e6dc881de23001b\n";
    let text = sample.repeat(200);
    let mut g = c.benchmark_group("scan");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("mixed zh/en support text", |b| {
        let mut spans = Vec::new();
        b.iter(|| {
            for line in text.lines() {
                spans.clear();
                tutela_pii::scan_line(black_box(line), &mut spans);
            }
            spans.len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
