//! Benchmarks of the flatten core.
//!
//! - `document`: one realistic full-export line, its item alone (a bare
//!   item) and one Kinesis record.
//! - `block`: 10 000 generated full-export lines, flattened one by one into
//!   a reused buffer, side by side with a simd-json parse of the same lines
//!   (tape and borrowed value, reused buffers: a floor for any parser that
//!   looks at every byte) and the plain `serde_json::Value` reference
//!   flattener of `benches/support/value_flatten.rs`.
//!
//! All share the allocator of the `dynamo-flatten` binary (mimalloc).
//!
//! Run: `cargo bench --bench flatten` (add `-- block` for the block only).

use std::hint::black_box;
use std::time::Duration;

use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use dynamo_flatten::flatten::{Flattener, Options};

#[path = "support/gen.rs"]
mod gen;
#[path = "support/value_flatten.rs"]
mod value_flatten;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A full-export line with every type: nested `M` and `L`, the three sets,
/// `B`, `BOOL`, `NULL`, short and long strings, raw and escaped Unicode,
/// 38-digit and exponent numbers.
const EXPORT_LINE: &str = concat!(
    r#"{"Item":{"pk":{"S":"CUSTOMER#00012345"},"sk":{"S":"ORDER#2024-11-23#8f3a9c2e71d4"},"#,
    r#""created_at":{"N":"1732406500123"},"status":{"S":"SHIPPED"},"total":{"N":"1249.90"},"#,
    r#""balance":{"N":"-12345678901234567890.123456789012345678"},"is_gift":{"BOOL":true},"#,
    r#""discount_code":{"NULL":true},"customer_name":{"S":"Zoë \"Bob\" Schröder"},"#,
    r#""notes":{"S":"Please leave the package at the side door.\nRing twice, the bell is "#,
    r#"quiet. Café ☕ upstairs; copy to the 東京 office: C:\\orders\\2024\\11.\tThanks! 📦 "#,
    r#"Delivery window 08:00-12:00, or after 18:00 on weekdays. If nobody answers, the "#,
    r#"neighbours at number 14 (Familie Müller) will take it. Do not bend: contains "#,
    r#"photographs. Invoice to the company address, VAT id DE123456789, reference "#,
    r#"\"PO-2024-0815\". Merci beaucoup et à bientôt !"},"#,
    r#""tags":{"SS":["vip","gift","größe-xl"]},"ratings":{"NS":["5","4.5","3"]},"#,
    r#""thumbnail":{"B":"iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAAGElEQVR42mNkYPhfz0AEYB"#,
    r#"xVSF+FAP5FDvcfRYWgAAAAAElFTkSuQmCC"},"signatures":{"BS":["AAECAwQFBgcICQ==","3q2+7w=="]},"#,
    r#""shipping_address":{"M":{"street":{"S":"12 Rue de l'Église"},"city":{"S":"Montr\u00e9al"},"#,
    r#""postcode":{"S":"H2X 1Y4"},"geo":{"M":{"lat":{"N":"45.508888"},"lon":{"N":"-73.561668"}}}}},"#,
    r#""line_items":{"L":[{"M":{"sku":{"S":"SKU-000731"},"qty":{"N":"2"},"#,
    r#""unit_price":{"N":"499.95"},"options":{"L":[{"S":"red"},{"S":"XL"}]}}},"#,
    r#"{"M":{"sku":{"S":"SKU-104552"},"qty":{"N":"1"},"unit_price":{"N":"250"},"#,
    r#""options":{"L":[]}}}]},"history":{"L":[{"M":{"at":{"N":"1732406400"},"#,
    r#""event":{"S":"paid"}}},{"S":"note: \ud83d\ude9a on its way"},{"N":"1E+3"},"#,
    r#"{"BOOL":false},{"NULL":true}]},"prefs":{"M":{}}}}"#,
);

/// A Kinesis Data Streams for DynamoDB MODIFY record, both images, `B`
/// values double-encoded as Kinesis writes them.
const KINESIS_RECORD: &str = concat!(
    r#"{"awsRegion":"eu-west-1","eventID":"3f1e5a9c-8d2b-4c7e-9a10-6b2f4e8d1c3a","#,
    r#""eventName":"MODIFY","userIdentity":null,"recordFormat":"application/json","#,
    r#""tableName":"orders","dynamodb":{"ApproximateCreationDateTime":1732406501000,"#,
    r#""Keys":{"pk":{"S":"CUSTOMER#00012345"},"sk":{"S":"ORDER#2024-11-23#8f3a9c2e71d4"}},"#,
    r#""NewImage":{"pk":{"S":"CUSTOMER#00012345"},"sk":{"S":"ORDER#2024-11-23#8f3a9c2e71d4"},"#,
    r#""created_at":{"N":"1732406500123"},"status":{"S":"DELIVERED"},"total":{"N":"1249.90"},"#,
    r#""balance":{"N":"98765432109876543210987654321098765432"},"is_gift":{"BOOL":true},"#,
    r#""discount_code":{"NULL":true},"customer_name":{"S":"Zoë \"Bob\" Schröder"},"#,
    r#""tags":{"SS":["vip","gift","größe-xl"]},"ratings":{"NS":["5","4.5","3"]},"#,
    r#""thumbnail":{"B":"aVZCT1J3MEtHZ29BQUFBTlNVaEVVZ0FBQUJBQUFBQVFDQVlBQUFBZjgvOWhBQUFBR0Vs"#,
    r#"RVFWUjQybU5rWVBoZnowQUVZQnhWU0YrRkFQNUZEdmNmUllXZ0FBQUFBRWxGVGtTdVFtQ0M="},"#,
    r#""signatures":{"BS":["QUFFQ0F3UUZCZ2NJQ1E9PQ==","M3EyKzd3PT0="]},"#,
    r#""shipping_address":{"M":{"street":{"S":"12 Rue de l'Église"},"city":{"S":"Montr\u00e9al"},"#,
    r#""geo":{"M":{"lat":{"N":"45.508888"},"lon":{"N":"-73.561668"}}}}},"#,
    r#""line_items":{"L":[{"M":{"sku":{"S":"SKU-000731"},"qty":{"N":"2"},"#,
    r#""options":{"L":[{"S":"red"},{"S":"XL"}]}}}]},"#,
    r#""history":{"L":[{"S":"delivered \ud83d\udce6"},{"N":"1E+3"},{"NULL":true}]}},"#,
    r#""OldImage":{"pk":{"S":"CUSTOMER#00012345"},"sk":{"S":"ORDER#2024-11-23#8f3a9c2e71d4"},"#,
    r#""created_at":{"N":"1732406500123"},"status":{"S":"SHIPPED"},"total":{"N":"1249.90"}},"#,
    r#""SizeBytes":1187},"eventSource":"aws:dynamodb"}"#,
);

const BLOCK_LINES: u64 = 10_000;
const SEED: u64 = 42;

fn documents(c: &mut Criterion) {
    let mut g = c.benchmark_group("document");
    g.measurement_time(Duration::from_secs(3));
    // The item of the export line on its own: a bare item.
    let bare_item = &EXPORT_LINE[r#"{"Item":"#.len()..EXPORT_LINE.len() - 1];
    for (name, doc) in [
        ("export_line", EXPORT_LINE),
        ("bare_item", bare_item),
        ("kinesis_record", KINESIS_RECORD),
    ] {
        let doc = doc.as_bytes();
        let mut f = Flattener::new(Options::default());
        let mut out = Vec::with_capacity(doc.len() * 2);
        if let Err(e) = f.flatten(doc, &mut out) {
            panic!("the {name} sample does not flatten: {e}");
        }
        g.throughput(Throughput::Bytes(doc.len() as u64));
        g.bench_function(BenchmarkId::new("dynamo_flatten", name), |b| {
            b.iter(|| {
                out.clear();
                black_box(f.flatten(black_box(doc), &mut out)).ok();
            })
        });
    }
    g.finish();
}

/// `BLOCK_LINES` generated full-export lines, one after another, and where
/// each one ends.
fn export_block() -> (Vec<u8>, Vec<usize>) {
    let mut g = gen::Generator::new(SEED);
    let mut data = Vec::new();
    let mut ends = Vec::new();
    for i in 0..BLOCK_LINES {
        g.export_line(i, &mut data);
        ends.push(data.len());
    }
    (data, ends)
}

fn lines<'a>(data: &'a [u8], ends: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let starts = std::iter::once(0).chain(ends.iter().copied());
    starts.zip(ends.iter().copied()).map(|(s, e)| &data[s..e])
}

fn block(c: &mut Criterion) {
    let (data, ends) = export_block();
    let mut g = c.benchmark_group("block");
    g.sample_size(10);
    g.sampling_mode(SamplingMode::Flat);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(data.len() as u64));
    let id = |name| BenchmarkId::new(name, format!("{BLOCK_LINES}_export_lines"));

    let mut f = Flattener::new(Options::default());
    let mut out = Vec::with_capacity(64 * 1024);
    for line in lines(&data, &ends) {
        out.clear();
        if let Err(e) = f.flatten(line, &mut out) {
            panic!("a generated line does not flatten: {e}");
        }
    }
    g.bench_function(id("dynamo_flatten"), |b| {
        b.iter(|| {
            let mut n = 0;
            for line in lines(&data, &ends) {
                out.clear();
                if f.flatten(line, &mut out).is_ok() {
                    n += out.len();
                }
            }
            black_box(n)
        })
    });

    // simd-json parses in place, so each line is first copied into a reused
    // buffer (a memcpy, small next to the parse).
    let mut buffers = simd_json::Buffers::new(64 * 1024);
    let mut scratch: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut tape: simd_json::Tape<'static> = simd_json::Tape::null();
    g.bench_function(id("simd_json_tape"), |b| {
        b.iter(|| {
            let mut n = 0;
            for line in lines(&data, &ends) {
                scratch.clear();
                scratch.extend_from_slice(line);
                let mut t = std::mem::replace(&mut tape, simd_json::Tape(Vec::new())).reset();
                if simd_json::fill_tape(&mut scratch, &mut buffers, &mut t).is_ok() {
                    n += t.0.len();
                }
                tape = t.reset();
            }
            black_box(n)
        })
    });

    g.bench_function(id("simd_json_borrowed_value"), |b| {
        b.iter(|| {
            let mut n = 0;
            for line in lines(&data, &ends) {
                scratch.clear();
                scratch.extend_from_slice(line);
                if let Ok(v) = simd_json::to_borrowed_value_with_buffers(&mut scratch, &mut buffers)
                {
                    black_box(&v);
                    n += 1;
                }
            }
            black_box(n)
        })
    });

    g.bench_function(id("serde_json_value_flatten"), |b| {
        b.iter(|| {
            let mut n = 0;
            for line in lines(&data, &ends) {
                out.clear();
                if value_flatten::flatten_line_to(line, &mut out).is_ok() {
                    n += out.len();
                }
            }
            black_box(n)
        })
    });
    g.finish();
}

criterion_group!(benches, documents, block);
criterion_main!(benches);
