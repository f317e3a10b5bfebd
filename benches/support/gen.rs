//! Deterministic generator of realistic DynamoDB JSON documents: full-export
//! lines `{"Item":{…}}` and Kinesis Data Streams for DynamoDB records.
//!
//! The same seed always gives the same bytes. Items have about twenty
//! attributes of every DynamoDB type: nested `M` and `L`, `SS`/`NS`/`BS`
//! sets, `B` (base64), `BOOL`, `NULL`, short and long strings with Unicode
//! (raw UTF-8 and `\u` escapes, surrogate pairs included), JSON escapes, and
//! numbers from small integers to 38 significant digits.
//!
//! Shared by the criterion bench and the `gen_export` example through
//! `#[path]`, so not every function is used by every includer.
#![allow(dead_code)]

use base64::Engine as _;

/// SplitMix64: small, fast, and good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `pct` percent.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    pub fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len() as u64) as usize]
    }
}

/// How `B`/`BS` values are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Binary {
    /// base64 of the bytes, as in exports.
    Plain,
    /// base64 of the base64 text, as in Kinesis Data Streams records.
    DoubleEncoded,
}

#[rustfmt::skip]
const WORDS: &[&str] = &[
    "order", "delivery", "package", "warehouse", "customer", "invoice", "refund", "priority",
    "express", "standard", "fragile", "handle", "with", "care", "the", "and", "of", "to",
    "please", "leave", "at", "door", "ring", "bell", "twice", "call", "on", "arrival", "gift",
    "wrap", "birthday", "present", "for", "my", "sister", "thanks", "again", "backorder",
    "partial", "shipment", "tracking", "number", "updated", "yesterday", "morning", "evening",
    "café", "naïve", "Zürich", "São", "Paulo", "東京", "Москва", "Ελλάδα", "مرحبا", "שלום",
    "straße", "smörgåsbord", "crème", "brûlée", "😀", "📦", "🚚", "✓", "€", "½",
];

#[rustfmt::skip]
const FIRST_NAMES: &[&str] = &[
    "Ana", "Björn", "Chloé", "Dmitri", "Émile", "Fatima", "Giulia", "Hiroshi", "Ingrid",
    "José", "Kateřina", "Łukasz", "María", "Nguyễn", "Olúwaseun", "Pádraig", "Quentin",
    "Renée", "Søren", "Tomás", "Ümit", "Võ", "Wojciech", "Xiù", "Yasmín", "Zoë", "李", "さくら",
];

#[rustfmt::skip]
const LAST_NAMES: &[&str] = &[
    "Andersson", "Bianchi", "Černý", "Dubois", "Eriksen", "Fernández", "García", "Hernández",
    "Ivanova", "Jørgensen", "Kowalski", "López", "Müller", "Nakamura", "O'Brien", "Papadopoulos",
    "Quiñones", "Rossi", "Schröder", "Tanaka", "Urquhart", "Văn", "Wiśniewski", "Yılmaz", "王",
];

#[rustfmt::skip]
const CITIES: &[&str] = &[
    "Berlin", "København", "Kraków", "Reykjavík", "Zürich", "Málaga", "Montréal", "São Paulo",
    "Québec", "İstanbul", "Αθήνα", "Москва", "東京", "서울", "القاهرة", "Tel Aviv-Yafo", "Łódź",
];

const STATUSES: &[&str] = &[
    "PENDING",
    "PAID",
    "SHIPPED",
    "DELIVERED",
    "CANCELLED",
    "RETURNED",
];

#[rustfmt::skip]
const TAGS: &[&str] = &[
    "vip", "b2b", "first-order", "repeat", "promo:SUMMER24", "needs-review", "fraud-check",
    "gift", "eco-packaging", "international", "étiquette", "größe-xl", "限定", "🎁",
];

const EVENTS: &[&str] = &[
    "created",
    "paid",
    "picked",
    "packed",
    "shipped",
    "delivered",
    "note",
];

/// Generates documents from one seed.
pub struct Generator {
    rng: Rng,
    binary: Binary,
    text: String,
    bytes: Vec<u8>,
    b64: String,
}

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: Rng::new(seed),
            binary: Binary::Plain,
            text: String::new(),
            bytes: Vec::new(),
            b64: String::new(),
        }
    }

    /// Appends a full-export line `{"Item":{…}}` (no newline) for item `index`.
    pub fn export_line(&mut self, index: u64, out: &mut Vec<u8>) {
        self.binary = Binary::Plain;
        let (pk, sk) = self.keys(index);
        out.extend_from_slice(b"{\"Item\":");
        self.item(&pk, &sk, out);
        out.push(b'}');
    }

    /// Appends a full-export line (no newline) of about `target` bytes for item `index`:
    /// the attributes of generated items in their order, those of the second item on with
    /// a suffix on their names (`notes_1`), as many as fit in `target` (at least one).
    /// Lines of 0.4, 4 or 40 KB then have the mix of types of the usual lines.
    pub fn sized_line(&mut self, index: u64, target: usize, out: &mut Vec<u8>) {
        self.binary = Binary::Plain;
        let start = out.len();
        out.extend_from_slice(b"{\"Item\":{");
        let mut item = Vec::new();
        let mut round = 0u32;
        let mut first = true;
        'fill: loop {
            item.clear();
            let (pk, sk) = self.keys(index);
            self.item(&pk, &sk, &mut item);
            for attr in top_level_members(&item) {
                // `"name":{…}`: the name ends at the first `":`.
                let Some(colon) = attr.windows(2).position(|w| w == b"\":") else {
                    continue;
                };
                let suffix = if round == 0 {
                    String::new()
                } else {
                    format!("_{round}")
                };
                let len = attr.len() + suffix.len() + 1;
                if !first && out.len() - start + len + 2 > target {
                    break 'fill;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(&attr[..colon]);
                out.extend_from_slice(suffix.as_bytes());
                out.extend_from_slice(&attr[colon..]);
            }
            round += 1;
        }
        out.extend_from_slice(b"}}");
    }

    /// Appends a Kinesis Data Streams for DynamoDB record (no newline) for
    /// item `index`: INSERT with a new image, MODIFY with both images, or
    /// REMOVE with the old image; `B` values double-encoded.
    pub fn kinesis_record(&mut self, index: u64, out: &mut Vec<u8>) {
        self.binary = Binary::DoubleEncoded;
        let (pk, sk) = self.keys(index);
        let event = match self.rng.below(10) {
            0..=5 => "INSERT",
            6..=8 => "MODIFY",
            _ => "REMOVE",
        };
        let ts = 1_700_000_000_000 + index * 37 + self.rng.below(37);
        out.extend_from_slice(b"{\"awsRegion\":\"eu-west-1\",\"eventID\":\"");
        self.uuid(out);
        out.extend_from_slice(b"\",\"eventName\":\"");
        out.extend_from_slice(event.as_bytes());
        out.extend_from_slice(
            b"\",\"userIdentity\":null,\"recordFormat\":\"application/json\",\
              \"tableName\":\"orders\",\"dynamodb\":{\"ApproximateCreationDateTime\":",
        );
        push_u64(out, ts);
        out.extend_from_slice(b",\"Keys\":{\"pk\":{\"S\":");
        json_str(out, &pk, false);
        out.extend_from_slice(b"},\"sk\":{\"S\":");
        json_str(out, &sk, false);
        out.extend_from_slice(b"}}");
        let start = out.len();
        if event != "REMOVE" {
            out.extend_from_slice(b",\"NewImage\":");
            self.item(&pk, &sk, out);
        }
        if event != "INSERT" {
            out.extend_from_slice(b",\"OldImage\":");
            self.item(&pk, &sk, out);
        }
        let size = (out.len() - start) as u64;
        out.extend_from_slice(b",\"SizeBytes\":");
        push_u64(out, size);
        out.extend_from_slice(b"},\"eventSource\":\"aws:dynamodb\"}");
    }

    fn keys(&mut self, index: u64) -> (String, String) {
        let pk = format!("CUSTOMER#{:08}", index / 3);
        let day = self.rng.range(1, 28);
        let month = self.rng.range(1, 12);
        let sk = format!(
            "ORDER#2024-{month:02}-{day:02}#{:012x}",
            self.rng.next_u64() >> 16
        );
        (pk, sk)
    }

    fn uuid(&mut self, out: &mut Vec<u8>) {
        let a = self.rng.next_u64();
        let b = self.rng.next_u64();
        let s = format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            0x8000 | (b >> 48) & 0x3fff,
            b & 0xffff_ffff_ffff
        );
        out.extend_from_slice(s.as_bytes());
    }

    /// The attribute map of one item.
    fn item(&mut self, pk: &str, sk: &str, out: &mut Vec<u8>) {
        let mut o = Obj::open(out);
        o.key(b"pk");
        s_val(o.out, pk, false);
        o.key(b"sk");
        s_val(o.out, sk, false);
        o.key(b"created_at");
        let ms = 1_600_000_000_000 + self.rng.below(150_000_000_000);
        n_val(o.out, &ms.to_string());
        o.key(b"status");
        let status = *self.rng.pick(STATUSES);
        s_val(o.out, status, false);
        o.key(b"total");
        let total = self.decimal(2);
        n_val(o.out, &total);
        o.key(b"quantity");
        let qty = self.rng.range(1, 40).to_string();
        n_val(o.out, &qty);
        o.key(b"balance");
        let big = self.big_number();
        n_val(o.out, &big);
        o.key(b"is_gift");
        let gift = self.rng.chance(20);
        bool_val(o.out, gift);
        o.key(b"discount_code");
        if self.rng.chance(60) {
            o.out.extend_from_slice(b"{\"NULL\":true}");
        } else {
            let code = format!("SAVE{}", self.rng.range(5, 50));
            s_val(o.out, &code, false);
        }
        o.key(b"customer_name");
        self.person_name();
        let escape = self.rng.chance(10);
        s_val(o.out, &self.text, escape);
        if self.rng.chance(85) {
            o.key(b"notes");
            let len = if self.rng.chance(10) {
                self.rng.range(1500, 4000)
            } else {
                self.rng.range(60, 600)
            };
            self.sentence(len as usize, true);
            let escape = self.rng.chance(5);
            s_val(o.out, &self.text, escape);
        }
        o.key(b"tags");
        self.tags(o.out);
        o.key(b"ratings");
        self.ratings(o.out);
        o.key(b"thumbnail");
        let n = self.rng.range(16, 300) as usize;
        self.binary_value(n);
        b_val(o.out, &self.b64);
        if self.rng.chance(50) {
            o.key(b"signatures");
            self.signatures(o.out);
        }
        o.key(b"shipping_address");
        self.address(o.out);
        o.key(b"line_items");
        self.line_items(o.out);
        o.key(b"history");
        self.history(o.out);
        o.key(b"prefs");
        self.prefs(o.out);
        if self.rng.chance(30) {
            o.key("größe".as_bytes());
            let size = *self.rng.pick(&["XS", "S", "M", "L", "XL", "XXL"]);
            s_val(o.out, size, false);
        }
        if self.rng.chance(5) {
            o.key(b"empty_note");
            s_val(o.out, "", false);
        }
        o.close();
    }

    fn person_name(&mut self) {
        self.text.clear();
        let first = *self.rng.pick(FIRST_NAMES);
        let last = *self.rng.pick(LAST_NAMES);
        self.text.push_str(first);
        self.text.push(' ');
        if self.rng.chance(10) {
            self.text.push_str("\"Bob\" ");
        }
        self.text.push_str(last);
    }

    /// Words of about `len` bytes into `self.text`, with punctuation,
    /// newlines, tabs, quotes and backslashes when `specials`.
    fn sentence(&mut self, len: usize, specials: bool) {
        self.text.clear();
        let mut capital = true;
        while self.text.len() < len {
            let w = *self.rng.pick(WORDS);
            if capital {
                let mut cs = w.chars();
                if let Some(c) = cs.next() {
                    self.text.extend(c.to_uppercase());
                    self.text.push_str(cs.as_str());
                }
                capital = false;
            } else {
                self.text.push_str(w);
            }
            let r = self.rng.below(100);
            match r {
                0..=7 => {
                    self.text.push_str(". ");
                    capital = true;
                }
                8..=11 => self.text.push_str(", "),
                12 if specials => {
                    self.text.push_str(".\n");
                    capital = true;
                }
                13 if specials => self.text.push_str(" \"quoted\" "),
                14 if specials => self.text.push_str(" C:\\path\\to\\file "),
                15 if specials => self.text.push('\t'),
                16 if specials => self.text.push_str(" </script> "),
                17 if specials && self.rng.chance(20) => self.text.push_str(" \u{1} "),
                _ => self.text.push(' '),
            }
        }
        let t = self
            .text
            .trim_end_matches([' ', '.', ',', '\n', '\t'])
            .len();
        self.text.truncate(t);
        self.text.push('.');
    }

    fn decimal(&mut self, scale: u32) -> String {
        let int = self.rng.below(100_000);
        let frac = self.rng.below(10u64.pow(scale));
        format!("{int}.{frac:0width$}", width = scale as usize)
    }

    /// From small integers to 38 significant digits, negative, fractional,
    /// with exponents.
    fn big_number(&mut self) -> String {
        let mut s = String::new();
        if self.rng.chance(20) {
            s.push('-');
        }
        match self.rng.below(10) {
            0 => s.push_str(&self.rng.below(1000).to_string()),
            1 => {
                s.push_str("0.");
                for _ in 0..self.rng.range(1, 30) {
                    s.push('0');
                }
                s.push_str(&self.rng.range(1, 999_999).to_string());
            }
            2 => {
                let m = self.rng.range(1, 9);
                let f = self.rng.below(1000);
                let e = self.rng.range(1, 120);
                let sign = if self.rng.chance(50) { "+" } else { "-" };
                s.push_str(&format!("{m}.{f:03}E{sign}{e}"));
            }
            _ => {
                let digits = self.rng.range(20, 38) as usize;
                s.push(char::from(b'1' + self.rng.below(9) as u8));
                let point = if self.rng.chance(40) {
                    self.rng.range(1, digits as u64 - 1) as usize
                } else {
                    0
                };
                for i in 1..digits {
                    if i == point {
                        s.push('.');
                    }
                    s.push(char::from(b'0' + self.rng.below(10) as u8));
                }
            }
        }
        s
    }

    /// Random bytes of length `n`, base64 (twice when double-encoding)
    /// into `self.b64`.
    fn binary_value(&mut self, n: usize) {
        self.bytes.clear();
        for _ in 0..n {
            self.bytes.push(self.rng.next_u64() as u8);
        }
        let engine = &base64::engine::general_purpose::STANDARD;
        self.b64.clear();
        engine.encode_string(&self.bytes, &mut self.b64);
        if self.binary == Binary::DoubleEncoded {
            let once = std::mem::take(&mut self.b64);
            engine.encode_string(once.as_bytes(), &mut self.b64);
        }
    }

    fn tags(&mut self, out: &mut Vec<u8>) {
        let n = self.rng.range(1, 6) as usize;
        let start = self.rng.below(TAGS.len() as u64) as usize;
        out.extend_from_slice(b"{\"SS\":[");
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            json_str(out, TAGS[(start + i) % TAGS.len()], false);
        }
        out.extend_from_slice(b"]}");
    }

    fn ratings(&mut self, out: &mut Vec<u8>) {
        let n = self.rng.range(1, 5);
        let base = self.rng.below(1000);
        out.extend_from_slice(b"{\"NS\":[");
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            // Distinct members: a set.
            let v = if i % 2 == 0 {
                format!("{}", base + i * 7)
            } else {
                format!("{}.{}", base + i * 7, self.rng.range(1, 9))
            };
            json_str(out, &v, false);
        }
        out.extend_from_slice(b"]}");
    }

    fn signatures(&mut self, out: &mut Vec<u8>) {
        let n = self.rng.range(1, 3);
        out.extend_from_slice(b"{\"BS\":[");
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            // Distinct lengths keep the members distinct.
            let len = 8 + 16 * i + self.rng.below(16);
            self.binary_value(len as usize);
            json_str(out, &self.b64, false);
        }
        out.extend_from_slice(b"]}");
    }

    fn address(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"M\":");
        let mut o = Obj::open(out);
        o.key(b"street");
        let street = format!(
            "{} {}",
            self.rng.range(1, 300),
            self.rng.pick(&[
                "Hauptstraße",
                "Rue de l'Église",
                "Main St",
                "Calle Mayor",
                "Øster Allé"
            ])
        );
        s_val(o.out, &street, false);
        o.key(b"city");
        let city = *self.rng.pick(CITIES);
        let escape = self.rng.chance(10);
        s_val(o.out, city, escape);
        o.key(b"postcode");
        let pc = format!("{:05}", self.rng.below(100_000));
        s_val(o.out, &pc, false);
        o.key(b"country");
        let country = *self
            .rng
            .pick(&["DE", "DK", "PL", "IS", "CH", "ES", "CA", "BR", "JP"]);
        s_val(o.out, country, false);
        o.key(b"geo");
        o.out.extend_from_slice(b"{\"M\":{\"lat\":");
        let lat = format!("{}.{:06}", self.rng.below(90), self.rng.below(1_000_000));
        n_val(o.out, &lat);
        o.out.extend_from_slice(b",\"lon\":");
        let lon = format!("-{}.{:06}", self.rng.below(180), self.rng.below(1_000_000));
        n_val(o.out, &lon);
        o.out.extend_from_slice(b"}}");
        if self.rng.chance(30) {
            o.key(b"instructions");
            let len = self.rng.range(20, 120) as usize;
            self.sentence(len, true);
            s_val(o.out, &self.text, false);
        }
        o.close();
        out.push(b'}');
    }

    fn line_items(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"L\":[");
        let n = if self.rng.chance(5) {
            0
        } else {
            self.rng.range(1, 5)
        };
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"M\":");
            let mut o = Obj::open(out);
            o.key(b"sku");
            let sku = format!("SKU-{:06}", self.rng.below(1_000_000));
            s_val(o.out, &sku, false);
            o.key(b"name");
            let len = self.rng.range(10, 40) as usize;
            self.sentence(len, false);
            s_val(o.out, &self.text, false);
            o.key(b"qty");
            let qty = self.rng.range(1, 12).to_string();
            n_val(o.out, &qty);
            o.key(b"unit_price");
            let price = self.decimal(2);
            n_val(o.out, &price);
            o.key(b"options");
            o.out.extend_from_slice(b"{\"L\":[");
            for j in 0..self.rng.below(3) {
                if j > 0 {
                    o.out.push(b',');
                }
                let opt =
                    *self
                        .rng
                        .pick(&["red", "blue", "XL", "gift-wrap", "engraving: «Für dich»"]);
                s_val(o.out, opt, false);
            }
            o.out.extend_from_slice(b"]}");
            if self.rng.chance(30) {
                o.key(b"discount");
                o.out.extend_from_slice(b"{\"M\":{\"pct\":");
                let pct = self.rng.range(5, 50).to_string();
                n_val(o.out, &pct);
                o.out.extend_from_slice(b",\"stackable\":");
                let st = self.rng.chance(50);
                bool_val(o.out, st);
                o.out.extend_from_slice(b"}}");
            }
            o.close();
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    }

    /// A list mixing every type.
    fn history(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"L\":[");
        let n = self.rng.range(1, 6);
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            match self.rng.below(7) {
                0..=2 => {
                    out.extend_from_slice(b"{\"M\":{\"at\":");
                    let at = (1_700_000_000 + self.rng.below(10_000_000)).to_string();
                    n_val(out, &at);
                    out.extend_from_slice(b",\"event\":");
                    let ev = *self.rng.pick(EVENTS);
                    s_val(out, ev, false);
                    out.extend_from_slice(b"}}");
                }
                3 => {
                    let len = self.rng.range(5, 60) as usize;
                    self.sentence(len, true);
                    s_val(out, &self.text, false);
                }
                4 => {
                    let v = self.big_number();
                    n_val(out, &v);
                }
                5 => {
                    let b = self.rng.chance(50);
                    bool_val(out, b);
                }
                _ => out.extend_from_slice(b"{\"NULL\":true}"),
            }
        }
        out.extend_from_slice(b"]}");
    }

    fn prefs(&mut self, out: &mut Vec<u8>) {
        if self.rng.chance(15) {
            out.extend_from_slice(b"{\"M\":{}}");
            return;
        }
        out.extend_from_slice(b"{\"M\":{\"newsletter\":");
        let b = self.rng.chance(40);
        bool_val(out, b);
        out.extend_from_slice(b",\"language\":");
        let lang = *self
            .rng
            .pick(&["de-DE", "da-DK", "pl-PL", "ja-JP", "pt-BR", "fr-CA"]);
        s_val(out, lang, false);
        out.extend_from_slice(b",\"channels\":{\"SS\":[\"email\",\"sms\"]},\"nested\":{\"M\":{\"level\":{\"M\":{\"deeper\":{\"L\":[{\"N\":\"1\"},{\"L\":[]}]}}}}}}}");
    }
}

/// The members (`"name":value`) of the JSON object `obj`, split at its top-level commas.
fn top_level_members(obj: &[u8]) -> Vec<&[u8]> {
    let inner = &obj[1..obj.len() - 1];
    let mut members = Vec::new();
    let (mut depth, mut in_string, mut escaped, mut from) = (0usize, false, false, 0usize);
    for (i, &c) in inner.iter().enumerate() {
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_string = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => {
                members.push(&inner[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    if from < inner.len() {
        members.push(&inner[from..]);
    }
    members
}

/// Writes the members of a JSON object with the commas between them.
struct Obj<'o> {
    out: &'o mut Vec<u8>,
    first: bool,
}

impl<'o> Obj<'o> {
    fn open(out: &'o mut Vec<u8>) -> Obj<'o> {
        out.push(b'{');
        Obj { out, first: true }
    }

    /// `"name":`, after a comma unless first. Names are plain text.
    fn key(&mut self, name: &[u8]) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(name);
        self.out.extend_from_slice(b"\":");
    }

    fn close(self) {
        self.out.push(b'}');
    }
}

fn s_val(out: &mut Vec<u8>, s: &str, ascii_escapes: bool) {
    out.extend_from_slice(b"{\"S\":");
    json_str(out, s, ascii_escapes);
    out.push(b'}');
}

fn n_val(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(b"{\"N\":\"");
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(b"\"}");
}

fn b_val(out: &mut Vec<u8>, b64: &str) {
    out.extend_from_slice(b"{\"B\":\"");
    out.extend_from_slice(b64.as_bytes());
    out.extend_from_slice(b"\"}");
}

fn bool_val(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b {
        b"{\"BOOL\":true}"
    } else {
        b"{\"BOOL\":false}"
    });
}

fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(v.to_string().as_bytes());
}

/// `s` as a JSON string. With `ascii_escapes`, every non-ASCII character is
/// written as `\uXXXX` (UTF-16, surrogate pairs above U+FFFF).
pub fn json_str(out: &mut Vec<u8>, s: &str, ascii_escapes: bool) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let u = |out: &mut Vec<u8>, unit: u16| {
        out.extend_from_slice(b"\\u");
        for shift in [12, 8, 4, 0] {
            out.push(HEX[usize::from((unit >> shift) & 0xf)]);
        }
    };
    out.push(b'"');
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 => u(out, c as u16),
            c if c.is_ascii() => out.push(c as u8),
            c if ascii_escapes => {
                let mut units = [0u16; 2];
                for &unit in c.encode_utf16(&mut units).iter() {
                    u(out, unit);
                }
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
    out.push(b'"');
}
