//! The live demo's clickstream: visitors of the sample's online shop viewing pages, adding
//! products from `assets/demo/products.csv` to their carts and buying them, as JSON messages
//! for the demo's Kafka topic (`event_time` is now). The rate follows the hour of the day the
//! way the sample week does, and every few minutes a flash sale brings a burst of several
//! times the rate, most of it on one discounted product. One message in a thousand is
//! malformed on purpose, so the dead-letter table has real entries to show.
//!
//! `Clickstream` only makes messages: given a seed and the same sequence of moments it makes
//! the same messages (for tests). `ClickstreamProducer` sends them to Kafka on a thread of
//! its own at the rate `Clickstream` asks for, and counts what the broker acknowledged.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::client::ClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::sample::PRODUCTS_CSV;
use super::DemoError;
use crate::warehouse::value::push_json_string;

/// A product of the shop, from the embedded product list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: String,
    pub price_cents: u64,
}

/// The shop's products. A line of the embedded list that does not parse is skipped (a unit
/// test checks that none is).
pub fn products() -> Vec<Product> {
    PRODUCTS_CSV
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.trim().split(',');
            let id = fields.next()?.trim();
            let _name = fields.next()?;
            let price_cents = parse_cents(fields.next()?)?;
            (!id.is_empty()).then(|| Product {
                id: id.to_string(),
                price_cents,
            })
        })
        .collect()
}

/// `89.90` → 8990.
fn parse_cents(text: &str) -> Option<u64> {
    let (units, cents) = text.trim().split_once('.').unwrap_or((text.trim(), "0"));
    let cents = match cents.len() {
        1 => cents.parse::<u64>().ok()? * 10,
        2 => cents.parse::<u64>().ok()?,
        _ => return None,
    };
    Some(units.parse::<u64>().ok()? * 100 + cents)
}

/// Events per hour of the day (UTC) in the sample week; the live rate follows its shape.
const HOURLY_EVENTS: [u32; 24] = [
    77, 23, 26, 29, 33, 57, 82, 159, 224, 258, 266, 285, 335, 326, 268, 278, 304, 340, 403, 393,
    353, 217, 166, 98,
];
/// How much of the rate follows the daily rhythm; the rest is constant, so the demo never
/// looks dead at night (the rate stays above about half the mean).
const RHYTHM_SHARE: f64 = 0.6;

const COUNTRIES: [&str; 10] = ["BR", "CA", "DE", "ES", "FR", "GB", "IN", "JP", "NL", "US"];
const COUNTRY_WEIGHTS: [u32; 10] = [314, 305, 589, 216, 463, 532, 486, 431, 229, 1435];
const DEVICES: [&str; 3] = ["desktop", "mobile", "tablet"];
const DEVICE_WEIGHTS: [u32; 3] = [2289, 2373, 338];
/// Pages of page views, as often as in the sample.
const PAGES: [&str; 6] = ["/", "/search", "/product", "/cart", "/checkout", "/account"];
const PAGE_WEIGHTS: [u32; 6] = [650, 644, 607, 698, 684, 667];
/// page_view, add_to_cart, purchase: as in the sample, and during a flash sale.
const TYPE_WEIGHTS: [u32; 3] = [79, 15, 6];
const SALE_TYPE_WEIGHTS: [u32; 3] = [55, 27, 18];
const QUANTITY_WEIGHTS: [u32; 3] = [80, 15, 5];
/// Visitors browsing at the same time; each event comes from one of them.
const ACTIVE_VISITORS: usize = 48;
/// Chance that a visitor leaves after an event (and a new one arrives).
const LEAVE_CHANCE: f64 = 0.03;
/// Visitor ids: returning visitors of the sample week (1..800) and new ones.
const MAX_USER_ID: u64 = 2_500;
/// Share of a flash sale's cart and purchase events that are for the featured product.
const SALE_FOCUS: f64 = 0.6;
/// The featured product's price during a flash sale, in percent.
const SALE_PRICE_PERCENT: u64 = 80;

/// Bursts of traffic: the first after `first_after`, then every `every`, each `length` long
/// at `factor` times the rate.
#[derive(Debug, Clone, PartialEq)]
pub struct SpikeSchedule {
    pub first_after: Duration,
    pub every: Duration,
    pub length: Duration,
    pub factor: f64,
}

impl Default for SpikeSchedule {
    fn default() -> Self {
        Self {
            first_after: Duration::from_secs(60),
            every: Duration::from_secs(240),
            length: Duration::from_secs(25),
            factor: 4.0,
        }
    }
}

impl SpikeSchedule {
    /// The number of the spike under way `since_start`, if one is.
    pub fn spike_at(&self, since_start: Duration) -> Option<u64> {
        let into = since_start.checked_sub(self.first_after)?;
        let every = self.every.max(self.length).max(Duration::from_millis(1));
        let n = into.as_millis() / every.as_millis();
        let offset = into.as_millis() % every.as_millis();
        (offset < self.length.as_millis()).then(|| u64::try_from(n).unwrap_or(u64::MAX))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ClickstreamOptions {
    /// Events per second at an average hour of the day; the daily rhythm and the flash sales
    /// move the rate around it.
    pub rate_per_sec: f64,
    pub seed: u64,
    /// `event_id` of the first event; the next ones count up from it.
    pub first_event_id: u64,
    /// One message in this many is malformed on purpose; 0: none.
    pub malformed_every: u64,
    pub spikes: SpikeSchedule,
}

impl Default for ClickstreamOptions {
    fn default() -> Self {
        Self {
            rate_per_sec: 200.0,
            seed: 0,
            first_event_id: 1_000_000,
            malformed_every: 1000,
            spikes: SpikeSchedule::default(),
        }
    }
}

/// When an event happens: wall-clock time for `event_time` and the daily rhythm, time since
/// the demo started for the flash sales.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    pub unix_millis: u64,
    pub since_start: Duration,
}

impl Moment {
    pub fn now(started: Instant) -> Self {
        let unix_millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            unix_millis,
            since_start: started.elapsed(),
        }
    }
}

/// One Kafka message: keyed by visitor, so a visitor's events stay in order on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub key: String,
    pub payload: String,
    pub malformed: bool,
}

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same stream on
/// every platform and version, which a library RNG does not promise.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// An index into `weights`, each as likely as its weight.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u64 = weights.iter().map(|w| u64::from(*w)).sum();
        let mut pick = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            let w = u64::from(*w);
            if pick < w {
                return i;
            }
            pick -= w;
        }
        0
    }
}

#[derive(Debug, Clone)]
struct Visitor {
    user_id: u64,
    country: usize,
    device: usize,
    /// Product index and quantity in the cart, bought by the visitor's next purchase.
    cart: Option<(usize, u64)>,
}

/// Makes the demo's events; see the module comment.
#[derive(Debug, Clone)]
pub struct Clickstream {
    rng: SplitMix64,
    options: ClickstreamOptions,
    products: Vec<Product>,
    /// How popular each product is, chosen once from the seed.
    product_weights: Vec<u32>,
    visitors: Vec<Visitor>,
    next_event_id: u64,
    /// Messages made so far.
    made: u64,
    malformed_made: u64,
    /// Which message of each `malformed_every` is malformed: early, so a short run has one.
    malformed_phase: u64,
}

impl Clickstream {
    pub fn new(options: ClickstreamOptions) -> Self {
        let mut rng = SplitMix64(options.seed);
        let products = products();
        let product_weights = products.iter().map(|_| 5 + rng.below(20) as u32).collect();
        let malformed_phase = if options.malformed_every == 0 {
            0
        } else {
            rng.below(options.malformed_every.min(200))
        };
        let mut stream = Self {
            rng,
            next_event_id: options.first_event_id,
            options,
            products,
            product_weights,
            visitors: Vec::with_capacity(ACTIVE_VISITORS),
            made: 0,
            malformed_made: 0,
            malformed_phase,
        };
        for _ in 0..ACTIVE_VISITORS {
            let v = stream.new_visitor();
            stream.visitors.push(v);
        }
        stream
    }

    /// Events per second wanted at this moment.
    pub fn rate_at(&self, at: Moment) -> f64 {
        let spike = if self.options.spikes.spike_at(at.since_start).is_some() {
            self.options.spikes.factor
        } else {
            1.0
        };
        self.options.rate_per_sec * daily_rhythm(at.unix_millis / 1000) * spike
    }

    /// Whether a flash sale is on at this moment.
    pub fn flash_sale(&self, at: Moment) -> bool {
        self.options.spikes.spike_at(at.since_start).is_some()
    }

    pub fn next_message(&mut self, at: Moment) -> Message {
        let n = self.made;
        self.made += 1;
        let event_id = self.next_event_id;
        self.next_event_id += 1;
        let slot = self.rng.below(self.visitors.len() as u64) as usize;
        let sale = self
            .options
            .spikes
            .spike_at(at.since_start)
            .filter(|_| !self.products.is_empty())
            .map(|spike| {
                (spike.wrapping_add(self.options.seed) % self.products.len() as u64) as usize
            });
        let payload = self.event(slot, event_id, at.unix_millis, sale);
        let key = self.visitors.get(slot).map_or(0, |v| v.user_id).to_string();
        if self.rng.chance(LEAVE_CHANCE) {
            let v = self.new_visitor();
            if let Some(slot) = self.visitors.get_mut(slot) {
                *slot = v;
            }
        }
        let every = self.options.malformed_every;
        if every > 0 && n % every == self.malformed_phase {
            let kind = self.malformed_made;
            self.malformed_made += 1;
            return Message {
                key,
                payload: malform(&payload, kind),
                malformed: true,
            };
        }
        Message {
            key,
            payload,
            malformed: false,
        }
    }

    fn new_visitor(&mut self) -> Visitor {
        Visitor {
            user_id: 1 + self.rng.below(MAX_USER_ID),
            country: self.rng.weighted(&COUNTRY_WEIGHTS),
            device: self.rng.weighted(&DEVICE_WEIGHTS),
            cart: None,
        }
    }

    /// A product: during a flash sale mostly the featured one.
    fn pick_product(&mut self, sale: Option<usize>) -> usize {
        match sale {
            Some(featured) if self.rng.chance(SALE_FOCUS) => featured,
            _ => self.rng.weighted(&self.product_weights),
        }
    }

    /// One event of visitor `slot` as JSON. Page views carry no quantity or revenue: the
    /// pipeline's mapping fills in the defaults.
    fn event(
        &mut self,
        slot: usize,
        event_id: u64,
        unix_millis: u64,
        sale: Option<usize>,
    ) -> String {
        let weights = if sale.is_some() {
            &SALE_TYPE_WEIGHTS
        } else {
            &TYPE_WEIGHTS
        };
        let have_products = !self.products.is_empty();
        let kind = if have_products {
            self.rng.weighted(weights)
        } else {
            0
        };
        let Some(visitor) = self.visitors.get(slot).cloned() else {
            return String::new();
        };
        let (event_type, page, product, quantity) = match kind {
            1 => {
                let product = self.pick_product(sale);
                let quantity = 1 + self.rng.weighted(&QUANTITY_WEIGHTS) as u64;
                if let Some(v) = self.visitors.get_mut(slot) {
                    v.cart = Some((product, quantity));
                }
                ("add_to_cart", "/cart", Some(product), quantity)
            }
            2 => {
                let (product, quantity) = match visitor.cart {
                    Some(carted) => carted,
                    None => (
                        self.pick_product(sale),
                        1 + self.rng.weighted(&QUANTITY_WEIGHTS) as u64,
                    ),
                };
                if let Some(v) = self.visitors.get_mut(slot) {
                    v.cart = None;
                }
                ("purchase", "/checkout", Some(product), quantity)
            }
            _ => {
                let page = PAGES[self.rng.weighted(&PAGE_WEIGHTS)];
                let product =
                    (page == "/product" && have_products).then(|| self.pick_product(sale));
                ("page_view", page, product, 0)
            }
        };
        let mut out = String::with_capacity(256);
        let _ = write!(
            out,
            r#"{{"id":{event_id},"ts":{unix_millis},"type":"{event_type}","page":"{page}","user":{{"id":{},"country":"{}","device":"{}"}}"#,
            visitor.user_id, COUNTRIES[visitor.country], DEVICES[visitor.device]
        );
        if let Some(p) = product.and_then(|i| self.products.get(i).map(|p| (i, p))) {
            let (index, product) = p;
            let price = if sale == Some(index) {
                product.price_cents * SALE_PRICE_PERCENT / 100
            } else {
                product.price_cents
            };
            out.push_str(r#","product":{"id":"#);
            push_json_string(&mut out, &product.id);
            let _ = write!(out, r#","price":{}}}"#, money(price));
            if quantity > 0 {
                let _ = write!(out, r#","quantity":{quantity}"#);
            }
            if event_type == "purchase" {
                let _ = write!(out, r#","revenue":{}"#, money(price * quantity));
            }
        }
        out.push('}');
        out
    }
}

/// Cents as a JSON number with two decimals: 8990 → `89.90`.
fn money(cents: u64) -> String {
    format!("{}.{:02}", cents / 100, cents % 100)
}

/// The rate factor at this time of day: the sample week's shape, interpolated between hours,
/// softened so that it averages 1.
fn daily_rhythm(unix_secs: u64) -> f64 {
    let mean = HOURLY_EVENTS.iter().map(|n| f64::from(*n)).sum::<f64>() / 24.0;
    let of_day = unix_secs % 86_400;
    let hour = (of_day / 3600) as usize;
    let frac = (of_day % 3600) as f64 / 3600.0;
    let here = f64::from(HOURLY_EVENTS[hour % 24]);
    let next = f64::from(HOURLY_EVENTS[(hour + 1) % 24]);
    let shape = (here + (next - here) * frac) / mean;
    (1.0 - RHYTHM_SHARE) + RHYTHM_SHARE * shape
}

/// A message the pipeline must refuse, of one of three kinds a real feed produces: cut off
/// mid-way, a timestamp that is not one, a visitor id that is not a number.
fn malform(payload: &str, kind: u64) -> String {
    match kind % 3 {
        0 => {
            let cut = payload
                .char_indices()
                .map(|(i, _)| i)
                .take_while(|i| *i <= payload.len() * 2 / 3)
                .last()
                .unwrap_or(0);
            payload[..cut].to_string()
        }
        1 => replace_field(payload, "\"ts\":", "\"ts\":\"yesterday\""),
        _ => replace_field(payload, "\"user\":{\"id\":", "\"user\":{\"id\":\"guest\""),
    }
}

/// Replaces the number after `prefix` with `replacement` (prefix included).
fn replace_field(payload: &str, prefix: &str, replacement: &str) -> String {
    let Some(start) = payload.find(prefix) else {
        return format!("{payload} trailing garbage");
    };
    let value_start = start + prefix.len();
    let value_end = payload[value_start..]
        .find(|c: char| !c.is_ascii_digit())
        .map_or(payload.len(), |i| value_start + i);
    format!(
        "{}{replacement}{}",
        &payload[..start],
        &payload[value_end..]
    )
}

/// What the producer has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct GeneratorCounts {
    /// Messages the broker acknowledged, malformed ones included.
    pub produced: u64,
    /// Of those, malformed on purpose.
    pub malformed: u64,
    /// Messages the broker did not take.
    pub failed: u64,
    /// The rate asked for right now (events per second).
    pub target_rate_per_sec: f64,
    pub flash_sale: bool,
}

#[derive(Debug, Default)]
struct GeneratorStats {
    produced: AtomicU64,
    malformed: AtomicU64,
    failed: AtomicU64,
    /// `f64` bits.
    target_rate: AtomicU64,
    flash_sale: AtomicBool,
}

impl GeneratorStats {
    fn counts(&self) -> GeneratorCounts {
        GeneratorCounts {
            produced: self.produced.load(Ordering::Relaxed),
            malformed: self.malformed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            target_rate_per_sec: f64::from_bits(self.target_rate.load(Ordering::Relaxed)),
            flash_sale: self.flash_sale.load(Ordering::Relaxed),
        }
    }
}

/// Counts the broker's acknowledgements; the opaque value marks malformed messages.
struct DeliveryCounter(Arc<GeneratorStats>);

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, malformed: usize) {
        match result {
            Ok(_) => {
                self.0.produced.fetch_add(1, Ordering::Relaxed);
                if malformed == 1 {
                    self.0.malformed.fetch_add(1, Ordering::Relaxed);
                }
            }
            Err((e, _)) => {
                self.0.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("demo generator: the broker refused a message: {e}");
            }
        }
    }
}

/// How often the producer thread wakes up to send what is due.
const TICK: Duration = Duration::from_millis(20);
/// How long stopping waits for messages in flight.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(10);

/// Sends a `Clickstream` to a topic on a thread of its own until stopped.
pub struct ClickstreamProducer {
    stats: Arc<GeneratorStats>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ClickstreamProducer {
    pub fn start(
        brokers: &str,
        topic: &str,
        options: ClickstreamOptions,
    ) -> Result<Self, DemoError> {
        let stats = Arc::new(GeneratorStats::default());
        let producer: BaseProducer<DeliveryCounter> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("client.id", "aurora-demo-generator")
            // Larger, compressed message sets: the mock broker keeps ~5 MiB per partition.
            .set("compression.type", "lz4")
            .set("linger.ms", "100")
            .create_with_context(DeliveryCounter(stats.clone()))
            .map_err(|e| DemoError::Kafka(format!("cannot create the demo producer: {e}")))?;
        let stop = Arc::new(AtomicBool::new(false));
        let topic = topic.to_string();
        let thread = {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::Builder::new()
                .name("demo-generator".into())
                .spawn(move || produce(&producer, &topic, options, &stats, &stop))
                .map_err(|e| DemoError::Kafka(format!("cannot start the generator thread: {e}")))?
        };
        Ok(Self {
            stats,
            stop,
            thread: Some(thread),
        })
    }

    pub fn counts(&self) -> GeneratorCounts {
        self.stats.counts()
    }

    /// Stops producing and waits (up to a few seconds) for the messages in flight to be
    /// acknowledged. Blocks: call it off the async runtime.
    pub fn stop(mut self) -> GeneratorCounts {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let mut counts = self.stats.counts();
        counts.target_rate_per_sec = 0.0;
        counts.flash_sale = false;
        counts
    }
}

impl Drop for ClickstreamProducer {
    fn drop(&mut self) {
        // Not joined here: the thread ends on its own after a flush.
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The producer thread: every tick, sends the events due at the current rate.
fn produce(
    producer: &BaseProducer<DeliveryCounter>,
    topic: &str,
    options: ClickstreamOptions,
    stats: &GeneratorStats,
    stop: &AtomicBool,
) {
    let started = Instant::now();
    let mut stream = Clickstream::new(options);
    let mut owed = 0.0_f64;
    let mut last = started;
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        let at = Moment::now(started);
        let rate = stream.rate_at(at);
        stats.target_rate.store(rate.to_bits(), Ordering::Relaxed);
        stats
            .flash_sale
            .store(stream.flash_sale(at), Ordering::Relaxed);
        // After a stall (a suspended laptop) the rate carries on; no burst to catch up.
        owed = (owed + rate * now.duration_since(last).as_secs_f64()).min(rate.max(1.0));
        last = now;
        while owed >= 1.0 && !stop.load(Ordering::SeqCst) {
            owed -= 1.0;
            let message = stream.next_message(at);
            send(producer, topic, &message, stats, stop);
        }
        producer.poll(Duration::ZERO);
        std::thread::sleep(TICK);
    }
    if let Err(e) = producer.flush(FLUSH_TIMEOUT) {
        tracing::warn!("demo generator: messages still in flight at the end: {e}");
    }
}

fn send(
    producer: &BaseProducer<DeliveryCounter>,
    topic: &str,
    message: &Message,
    stats: &GeneratorStats,
    stop: &AtomicBool,
) {
    let mut record = BaseRecord::with_opaque_to(topic, usize::from(message.malformed))
        .key(message.key.as_str())
        .payload(message.payload.as_str());
    loop {
        match producer.send(record) {
            Ok(()) => return,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back))
                if !stop.load(Ordering::SeqCst) =>
            {
                // librdkafka's queue is full: let it deliver, then try again.
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, _)) => {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!("demo generator: cannot queue a message: {e}");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::pipeline::check_str;
    use crate::ingest::transform::{TargetColumn, Transform};
    use crate::warehouse::types::DataType;

    fn moment(i: u64) -> Moment {
        Moment {
            unix_millis: 1_795_000_000_000 + i * 5,
            since_start: Duration::from_millis(i * 5),
        }
    }

    fn messages(options: ClickstreamOptions, n: u64) -> Vec<Message> {
        let mut stream = Clickstream::new(options);
        (0..n).map(|i| stream.next_message(moment(i))).collect()
    }

    #[test]
    fn the_embedded_product_list_parses_completely() {
        let products = products();
        assert_eq!(products.len(), PRODUCTS_CSV.lines().count() - 1);
        assert_eq!(
            products[0],
            Product {
                id: "P-1001".into(),
                price_cents: 8990
            }
        );
        assert_eq!(parse_cents("12"), Some(1200));
        assert_eq!(parse_cents("12.5"), Some(1250));
        assert_eq!(parse_cents("x.50"), None);
    }

    #[test]
    fn the_same_seed_makes_the_same_stream_and_another_seed_another() {
        let options = ClickstreamOptions {
            seed: 42,
            ..ClickstreamOptions::default()
        };
        let a = messages(options.clone(), 3000);
        let b = messages(options, 3000);
        assert_eq!(a, b);
        let c = messages(
            ClickstreamOptions {
                seed: 43,
                ..ClickstreamOptions::default()
            },
            3000,
        );
        assert_ne!(a, c);
    }

    #[test]
    fn one_message_in_a_thousand_is_malformed_and_the_first_comes_early() {
        for seed in 0..20 {
            let all = messages(
                ClickstreamOptions {
                    seed,
                    ..ClickstreamOptions::default()
                },
                10_000,
            );
            let bad: Vec<usize> = (0..all.len()).filter(|i| all[*i].malformed).collect();
            assert_eq!(bad.len(), 10, "seed {seed}");
            assert!(bad[0] < 200, "seed {seed}: first at {}", bad[0]);
        }
        let none = messages(
            ClickstreamOptions {
                malformed_every: 0,
                ..ClickstreamOptions::default()
            },
            5000,
        );
        assert!(none.iter().all(|m| !m.malformed));
    }

    #[test]
    fn event_ids_count_up_from_the_first() {
        let all = messages(
            ClickstreamOptions {
                first_event_id: 7_000_000,
                malformed_every: 0,
                ..ClickstreamOptions::default()
            },
            100,
        );
        for (i, m) in all.iter().enumerate() {
            let v: serde_json::Value = serde_json::from_str(&m.payload).unwrap();
            assert_eq!(v["id"], 7_000_000 + i as u64);
        }
    }

    /// The demo table's columns, as `assets/demo/schema.sql` and the live demo make them.
    fn demo_events_columns() -> Vec<TargetColumn> {
        [
            ("event_time", "DateTime"),
            ("event_id", "UInt64"),
            ("user_id", "UInt32"),
            ("event_type", "LowCardinality(String)"),
            ("page", "String"),
            ("product_id", "String"),
            ("country", "LowCardinality(String)"),
            ("device", "LowCardinality(String)"),
            ("quantity", "UInt8"),
            ("revenue", "Decimal(10, 2)"),
            ("_aurora_source", "String"),
            ("_aurora_offset", "UInt64"),
        ]
        .into_iter()
        .map(|(name, ty)| TargetColumn {
            name: name.into(),
            data_type: DataType::parse(ty).unwrap(),
            has_server_default: name.starts_with("_aurora"),
        })
        .collect()
    }

    #[test]
    fn the_preset_stores_every_good_event_and_refuses_every_malformed_one() {
        let pipelines = check_str("demo-clickstream.yaml", super::super::PIPELINE_PRESET)
            .unwrap_or_else(|d| panic!("{}", crate::config::render_all(&d, None)));
        let transform = Transform::new(&pipelines[0].mapping, &demo_events_columns()).unwrap();
        // Long enough for flash sales (spikes by `since_start`) and every malformed kind.
        let mut stream = Clickstream::new(ClickstreamOptions {
            seed: 9,
            spikes: SpikeSchedule {
                first_after: Duration::from_secs(1),
                every: Duration::from_secs(4),
                length: Duration::from_secs(2),
                factor: 4.0,
            },
            ..ClickstreamOptions::default()
        });
        let mut kinds = std::collections::BTreeMap::new();
        let mut revenue_cents = 0u64;
        for i in 0..5000 {
            let m = stream.next_message(moment(i));
            let parsed = crate::ingest::sources::kafka::parse_payload(
                crate::ingest::pipeline::RecordFormat::Json,
                m.payload.as_bytes(),
            );
            let row = parsed.and_then(|v| transform.apply(&v).map_err(|e| e.to_string()));
            assert_eq!(row.is_err(), m.malformed, "{}: {row:?}", m.payload);
            if let Ok(row) = row {
                *kinds
                    .entry(row["event_type"].as_str().unwrap().to_string())
                    .or_insert(0) += 1;
                let revenue: f64 = row["revenue"]
                    .to_string()
                    .trim_matches('"')
                    .parse()
                    .unwrap();
                revenue_cents += (revenue * 100.0).round() as u64;
                assert_eq!(row["event_time"], 1_795_000_000 + i * 5 / 1000, "{row:?}");
            }
        }
        assert_eq!(kinds.len(), 3, "{kinds:?}");
        assert!(kinds["page_view"] > kinds["add_to_cart"], "{kinds:?}");
        assert!(kinds["add_to_cart"] > kinds["purchase"], "{kinds:?}");
        assert!(revenue_cents > 0);
    }

    #[test]
    fn the_rate_follows_the_day_and_jumps_in_a_flash_sale() {
        let stream = Clickstream::new(ClickstreamOptions::default());
        let day = 1_795_000_000 / 86_400 * 86_400;
        let at = |hour: u64, since: u64| Moment {
            unix_millis: (day + hour * 3600) * 1000,
            since_start: Duration::from_secs(since),
        };
        let night = stream.rate_at(at(2, 0));
        let evening = stream.rate_at(at(18, 0));
        assert!(night < 200.0 && evening > 200.0, "{night} {evening}");
        assert!(night > 80.0, "the demo never looks dead: {night}");
        // Averaged over the day, the rate is the one asked for.
        let mean: f64 = (0..24 * 60)
            .map(|m| {
                stream.rate_at(Moment {
                    unix_millis: (day + m * 60) * 1000,
                    since_start: Duration::ZERO,
                })
            })
            .sum::<f64>()
            / (24.0 * 60.0);
        assert!((mean - 200.0).abs() < 2.0, "{mean}");
        let spikes = SpikeSchedule::default();
        assert_eq!(spikes.spike_at(Duration::from_secs(59)), None);
        assert_eq!(spikes.spike_at(Duration::from_secs(60)), Some(0));
        assert_eq!(spikes.spike_at(Duration::from_secs(84)), Some(0));
        assert_eq!(spikes.spike_at(Duration::from_secs(85)), None);
        assert_eq!(spikes.spike_at(Duration::from_secs(300)), Some(1));
        assert!(stream.flash_sale(at(18, 70)));
        let sale = stream.rate_at(at(18, 70));
        assert!((sale / evening - 4.0).abs() < 1e-9, "{sale} {evening}");
    }

    #[test]
    fn malformed_kinds_break_what_they_say() {
        let good = r#"{"id":5,"ts":1795000000000,"type":"page_view","page":"/","user":{"id":12,"country":"DE","device":"mobile"}}"#;
        assert!(serde_json::from_str::<serde_json::Value>(&malform(good, 0)).is_err());
        let v: serde_json::Value = serde_json::from_str(&malform(good, 1)).unwrap();
        assert_eq!(v["ts"], "yesterday");
        assert_eq!(v["id"], 5);
        let v: serde_json::Value = serde_json::from_str(&malform(good, 2)).unwrap();
        assert_eq!(v["user"]["id"], "guest");
        assert_eq!(v["user"]["country"], "DE");
    }
}
