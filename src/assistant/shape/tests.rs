//! Tests of the fitting rules and name repair.

use super::time::{named_dates_in, NamedDates};
use super::*;
use crate::assistant::linking::{link, name_words, tests::fixture};
use crate::warehouse::schema::TableInfo;

fn fitted(question: &str, sql: &str) -> String {
    let (schema, samples) = fixture();
    fitted_in(&schema, &samples, question, sql)
}

/// The fixture with one table changed.
fn fixture_changing(table: &str, change: impl FnOnce(&mut TableInfo)) -> (Schema, ValueSamples) {
    let (mut schema, samples) = fixture();
    change(schema.tables.iter_mut().find(|t| t.name == table).unwrap());
    (schema, samples)
}

fn fitted_in(schema: &Schema, samples: &ValueSamples, question: &str, sql: &str) -> String {
    let linked = link(schema, samples, question, 3);
    let ctx = Fit {
        question,
        linked: &linked,
        schema,
        samples,
        default_database: "default",
        follow_up: false,
        disabled: &[],
    };
    let (sql, _) = repair_names(sql, &ctx);
    fit(&sql, &ctx).0
}

#[test]
fn a_query_that_fits_is_left_as_written() {
    for (q, sql) in [
        (
            "Revenue for each day",
            "SELECT toDate(event_time) AS day, sum(revenue) AS revenue FROM demo.events GROUP BY day ORDER BY day",
        ),
        (
            "How many purchases per country?",
            "SELECT country, count() AS purchases FROM demo.events WHERE event_type = 'purchase' GROUP BY country",
        ),
        ("not even sql", "SELEC nothing"),
    ] {
        assert_eq!(fitted(q, sql), sql, "{q}");
    }
}

#[test]
fn made_up_columns_become_real_ones() {
    assert_eq!(
        fitted(
            "For each year, on how many days was it hotter than 30 degrees?",
            "SELECT year, countIf(temp_max > 30) AS hot_days FROM vega.weather GROUP BY year"
        ),
        "SELECT toYear(date) AS year, countIf(temp_max > 30) AS hot_days FROM vega.weather GROUP BY toYear(date)"
    );
    assert_eq!(
        fitted(
            "average max temperature",
            "SELECT avg(tm) FROM vega.weather"
        ),
        "SELECT avg(temp_max) FROM vega.weather",
        "an abbreviation of one column's words is that column"
    );
    assert_eq!(
        fitted(
            "average temperature",
            "SELECT avg(temperature_maximum) FROM vega.weather"
        ),
        "SELECT avg(temp_max) FROM vega.weather",
        "each word of the column starts the written word"
    );
    // Two columns it could be: left for the repair prompt.
    let unknown = "SELECT avg(temperature) FROM vega.weather";
    assert_eq!(fitted("average temperature", unknown), unknown);
    assert_eq!(
        fitted("top states", "SELECT w.states FROM vega.airports AS w"),
        "SELECT w.state FROM vega.airports AS w"
    );
}

#[test]
fn other_spellings_of_a_column_are_that_column() {
    for (written, real, prefix) in [
        ("orderdate", "o_orderdate", Some("o_")),
        ("order_date", "o_orderdate", Some("o_")),
        ("playerId", "playerID", None),
        ("departure_delay", "dep_delay", None),
        ("scheduled_depart_time", "sched_dep_time", None),
        ("accountbal", "c_acctbal", Some("c_")),
        ("visibility", "visib", None),
    ] {
        assert!(spelled_like(written, real, prefix), "{written} → {real}");
    }
    for (written, real, prefix) in [
        ("airline", "air_time", None),
        ("delay", "dep_delay", None),
        ("c_discount", "c_comment", Some("c_")),
        ("cancelled", "carrier", None),
    ] {
        assert!(
            !spelled_like(written, real, prefix),
            "{written} is not {real}"
        );
    }
    assert_eq!(name_words("sched_depTime"), vec!["sched", "dep", "time"]);
    assert_eq!(name_words("playerID"), vec!["player", "id"]);
}

#[test]
fn a_bucket_is_the_unit_its_alias_names() {
    assert_eq!(
        fitted(
            "average high per month",
            "SELECT toDate(date) AS month, avg(temp_max) FROM vega.weather GROUP BY toDate(date) ORDER BY toDate(date)"
        ),
        "SELECT toStartOfMonth(date) AS month, avg(temp_max) FROM vega.weather GROUP BY toStartOfMonth(date) ORDER BY toStartOfMonth(date)"
    );
    assert_eq!(
        fitted(
            "precipitation per year",
            "SELECT toStartOfYear(date) AS year, sum(precipitation) FROM vega.weather GROUP BY year"
        ),
        "SELECT toYear(date) AS year, sum(precipitation) FROM vega.weather GROUP BY year"
    );
    assert_eq!(
        fitted(
            "Which calendar month is the warmest?",
            "SELECT toStartOfMonth(date) AS month, avg(temp_max) AS t FROM vega.weather GROUP BY month ORDER BY t DESC LIMIT 1"
        ),
        "SELECT toMonth(date) AS month, avg(temp_max) AS t FROM vega.weather GROUP BY month ORDER BY t DESC LIMIT 1"
    );
}

#[test]
fn a_named_value_filters_rather_than_groups() {
    assert_eq!(
        fitted(
            "What is the median purchase amount?",
            "SELECT event_type, median(toFloat64(revenue)) AS m FROM demo.events GROUP BY event_type ORDER BY event_type"
        ),
        "SELECT median(toFloat64(revenue)) AS m FROM demo.events WHERE event_type = 'purchase'"
    );
    let by_type = "SELECT event_type, count() FROM demo.events GROUP BY event_type";
    assert_eq!(fitted("purchases by event type", by_type), by_type);
}

#[test]
fn conditions_on_values_the_question_does_not_name_are_dropped() {
    assert_eq!(
        fitted(
            "Total precipitation for each year",
            "SELECT toYear(date) AS year, sum(precipitation) FROM vega.weather WHERE weather = 'drizzle' AND temp_max > 3 GROUP BY year"
        ),
        "SELECT toYear(date) AS year, sum(precipitation) FROM vega.weather WHERE temp_max > 3 GROUP BY year"
    );
    let named = "SELECT count() FROM vega.weather WHERE weather = 'drizzle'";
    assert_eq!(fitted("How many days with drizzle?", named), named);
    let code = "SELECT count() FROM demo.events WHERE country = 'DE'";
    assert_eq!(fitted("How many events came from Germany?", code), code);
    let unsampled = "SELECT count() FROM vega.airports WHERE state = 'TX'";
    assert_eq!(fitted("How many airports in Texas?", unsampled), unsampled);
    // A word of a longer named value does not name a shorter one.
    let (schema, mut samples) = fixture();
    samples.values.insert(
        ("demo.events".into(), "page".into()),
        vec!["/".into(), "/cart".into(), "/product".into()],
    );
    assert_eq!(
        fitted_in(
            &schema,
            &samples,
            "add-to-cart events and purchases per device",
            "SELECT device, countIf(event_type = 'add_to_cart') FROM demo.events WHERE page = '/cart' GROUP BY device"
        ),
        "SELECT device, countIf(event_type = 'add_to_cart') FROM demo.events GROUP BY device"
    );
    let cart = "SELECT count() FROM demo.events WHERE page = '/cart'";
    assert_eq!(
        fitted_in(&schema, &samples, "How many views of the cart page?", cart),
        cart
    );
}

#[test]
fn values_the_question_names_are_filtered_on() {
    assert_eq!(
        fitted(
            "How many units were bought in purchases on mobile?",
            "SELECT sum(quantity) FROM demo.events AS e WHERE e.device = 'mobile'"
        ),
        "SELECT sum(quantity) FROM demo.events AS e WHERE e.device = 'mobile' AND e.event_type = 'purchase'"
    );
    let ambiguous = "SELECT o.name, sum(m.revenue) FROM demo.events AS m JOIN demo.products AS o ON m.product_id = o.product_id GROUP BY o.name";
    assert_eq!(fitted("revenue per product name", ambiguous), ambiguous);
    let conditional =
        "SELECT device, countIf(event_type = 'purchase') FROM demo.events GROUP BY device";
    assert_eq!(
        fitted("purchases for each device", conditional),
        conditional
    );
}

#[test]
fn dates_in_the_question() {
    assert_eq!(
        named_dates_in("how many purchases on november 20, 2026 and in 2013?"),
        NamedDates {
            days: vec!["2026-11-20".into()],
            months: vec![],
            years: vec![2013]
        }
    );
    assert_eq!(
        named_dates_in("rain in march 2014, or on 3rd mar 2015, or 2016-01-02"),
        NamedDates {
            days: vec!["2015-03-03".into(), "2016-01-02".into()],
            months: vec!["2014-03-01".into()],
            years: vec![]
        }
    );
    assert_eq!(named_dates_in("may I see 2000 rows"), NamedDates::default());
}

#[test]
fn a_named_period_the_query_forgets_is_added() {
    assert_eq!(
        fitted(
            "How many purchases were there in each hour of November 20, 2026?",
            "SELECT toStartOfHour(event_time) AS hour, count() FROM demo.events WHERE event_type = 'purchase' GROUP BY hour"
        ),
        "SELECT toStartOfHour(event_time) AS hour, count() FROM demo.events WHERE event_type = 'purchase' AND toDate(event_time) = '2026-11-20' GROUP BY hour"
    );
    assert_eq!(
        fitted(
            "Average high for each month of 2013",
            "SELECT toStartOfMonth(date) AS month, avg(temp_max) FROM vega.weather WHERE date >= '2013-01-01' AND date < '2013-12-31' GROUP BY month"
        ),
        "SELECT toStartOfMonth(date) AS month, avg(temp_max) FROM vega.weather WHERE toYear(date) = 2013 GROUP BY month"
    );
    let kept = "SELECT count() FROM vega.weather WHERE toYear(date) = 2013";
    assert_eq!(fitted("How many days in 2013?", kept), kept);
    let range = "SELECT count() FROM vega.weather WHERE date >= '2013-01-01'";
    assert_eq!(fitted("days since 2013-01-01", range), range);
}

#[test]
fn a_column_divided_by_its_own_sum_is_a_share_of_the_total() {
    assert_eq!(
        fitted(
            "What share of the revenue did each device bring, in percent?",
            "SELECT device, round(revenue / sum(revenue) * 100, 2) AS share FROM demo.events WHERE country = 'DE' GROUP BY device"
        ),
        "SELECT device, round(sum(toFloat64(revenue)) / (SELECT sum(toFloat64(revenue)) FROM demo.events WHERE country = 'DE') * 100, 2) AS share FROM demo.events WHERE country = 'DE' GROUP BY device"
    );
    assert_eq!(
        fitted(
            "share of rain per kind of weather",
            "SELECT w.weather, sum(w.precipitation) / sum(w.precipitation) FROM vega.weather AS w GROUP BY w.weather"
        ),
        "SELECT w.weather, sum(w.precipitation) / (SELECT sum(w.precipitation) FROM vega.weather AS w) FROM vega.weather AS w GROUP BY w.weather",
        "a sum divided by itself is 1 in every group"
    );
    for kept in [
        // Another column, or the group key itself: not a share.
        "SELECT device, sum(revenue) / sum(quantity) AS per_item FROM demo.events GROUP BY device",
        "SELECT quantity, quantity / sum(quantity) FROM demo.events GROUP BY quantity",
        "SELECT revenue / quantity FROM demo.events",
    ] {
        assert_eq!(fitted("revenue per item", kept), kept);
    }
}

#[test]
fn how_many_of_a_named_thing_counts_rows() {
    assert_eq!(
        fitted(
            "Which page gets the most page views, and how many does it get?",
            "SELECT page, sum(quantity) AS views FROM demo.events WHERE event_type = 'page_view' GROUP BY page ORDER BY sum(quantity) DESC LIMIT 1"
        ),
        "SELECT page, count() AS views FROM demo.events WHERE event_type = 'page_view' GROUP BY page ORDER BY count() DESC LIMIT 1"
    );
    assert_eq!(
        fitted(
            "How many purchases per country in the last hour?",
            "SELECT country, count() FROM demo.events WHERE event_type = 'purchase' GROUP BY country LIMIT 1"
        ),
        "SELECT country, count() FROM demo.events WHERE event_type = 'purchase' AND event_time >= now() - INTERVAL 1 HOUR GROUP BY country"
    );
    assert_eq!(
        fitted(
            "How many purchases per country?",
            "SELECT country, sum(quantity) FROM demo.events WHERE event_type = 'purchase' GROUP BY country"
        ),
        "SELECT country, count() FROM demo.events WHERE event_type = 'purchase' GROUP BY country"
    );
    assert_eq!(
        fitted(
            "On average, how many events does a visitor generate?",
            "SELECT round(sum(quantity) / uniqExact(user_id), 2) AS per_visitor FROM demo.events"
        ),
        "SELECT round(count() / uniqExact(user_id), 2) AS per_visitor FROM demo.events"
    );
    for (question, kept) in [
        // "units" may be a measure: the sum stays.
        (
            "How many units of each product were purchased?",
            "SELECT product_id, sum(quantity) FROM demo.events WHERE event_type = 'purchase' GROUP BY product_id",
        ),
        // The question names the column (its comment says "items").
        (
            "How many purchases per country, and how many items?",
            "SELECT country, count(), sum(quantity) FROM demo.events WHERE event_type = 'purchase' GROUP BY country",
        ),
        ("What was the total revenue?", "SELECT sum(revenue) FROM demo.events"),
    ] {
        assert_eq!(fitted(question, kept), kept, "{question}");
    }
}

#[test]
fn a_known_value_is_not_null() {
    let (schema, samples) = fixture_changing("airports", |airports| {
        airports.columns[2].type_name = "Nullable(String)".into();
    });
    assert_eq!(
        fitted_in(
            &schema,
            &samples,
            "How many airports with a known city are in TX?",
            "SELECT count() FROM vega.airports WHERE state = 'TX'"
        ),
        "SELECT count() FROM vega.airports WHERE state = 'TX' AND city IS NOT NULL"
    );
    for (question, kept) in [
        (
            "How many airports with a known city?",
            "SELECT count() FROM vega.airports WHERE city IS NOT NULL",
        ),
        // Unknown is not known; a column that cannot be NULL needs no test.
        (
            "How many airports have an unknown city?",
            "SELECT countIf(isNull(city)) FROM vega.airports",
        ),
        (
            "How many airports with a known state?",
            "SELECT count() FROM vega.airports",
        ),
    ] {
        assert_eq!(
            fitted_in(&schema, &samples, question, kept),
            kept,
            "{question}"
        );
    }
}

#[test]
fn group_keys_are_shown() {
    assert_eq!(
        fitted(
            "Average max temperature per weather kind",
            "SELECT avg(temp_max) AS t FROM vega.weather GROUP BY weather ORDER BY t"
        ),
        "SELECT weather, avg(temp_max) AS t FROM vega.weather GROUP BY weather ORDER BY t"
    );
}

#[test]
fn a_named_aggregate_the_query_lacks_is_applied() {
    assert_eq!(
        fitted(
            "What's the median temp max in Seattle?",
            "SELECT temp_max FROM vega.weather ORDER BY temp_max DESC LIMIT 1"
        ),
        "SELECT median(temp_max) AS temp_max FROM vega.weather"
    );
    let top = "SELECT temp_max FROM vega.weather ORDER BY temp_max DESC LIMIT 1";
    assert_eq!(fitted("What was the highest temp max?", top), top);
}

#[test]
fn columns_neither_grouped_nor_aggregated() {
    assert_eq!(
        fitted(
            "For each weather kind, the highest temperature and the day it was reached",
            "SELECT weather, max(temp_max) AS top, date FROM vega.weather GROUP BY weather"
        ),
        "SELECT weather, max(temp_max) AS top, argMax(date, temp_max) AS date FROM vega.weather GROUP BY weather"
    );
    assert_eq!(
        fitted(
            "median revenue of purchases",
            "SELECT event_type, median(toFloat64(revenue)) AS m FROM demo.events WHERE event_type = 'purchase'"
        ),
        "SELECT median(toFloat64(revenue)) AS m FROM demo.events WHERE event_type = 'purchase'"
    );
    assert_eq!(
        fitted(
            "events and their countries",
            "SELECT country, count() AS n FROM demo.events"
        ),
        "SELECT country, count() AS n FROM demo.events GROUP BY country"
    );
    let ratio = "SELECT sum(revenue) AS r, count() AS n, r / n AS per FROM demo.events";
    assert_eq!(fitted("revenue per event", ratio), ratio);
}

#[test]
fn which_one_is_the_top_one() {
    assert_eq!(
        fitted(
            "Which month had the most precipitation?",
            "SELECT toStartOfMonth(date) AS month, sum(precipitation) AS rain FROM vega.weather GROUP BY month ORDER BY month"
        ),
        "SELECT toStartOfMonth(date) AS month, sum(precipitation) AS rain FROM vega.weather GROUP BY month ORDER BY rain DESC LIMIT 1"
    );
    // A word that says the end only for one kind of data is left to the model.
    let wettest = "SELECT toStartOfMonth(date) AS month, sum(precipitation) AS rain FROM vega.weather GROUP BY month ORDER BY month";
    assert_eq!(fitted("Which month was the wettest?", wettest), wettest);
    let all =
        "SELECT weather, count() AS days FROM vega.weather GROUP BY weather ORDER BY days DESC";
    assert_eq!(fitted("How many days of each weather?", all), all);
}

#[test]
fn the_top_one_by_its_aggregate_not_its_key() {
    assert_eq!(
        fitted(
            "Which day had the highest revenue?",
            "SELECT toDate(event_time) AS day, sum(revenue) AS r FROM demo.events GROUP BY day ORDER BY day DESC LIMIT 1"
        ),
        "SELECT toDate(event_time) AS day, sum(revenue) AS r FROM demo.events GROUP BY day ORDER BY r DESC LIMIT 1"
    );
    let by_aggregate = "SELECT toDate(event_time) AS day, sum(revenue) AS r FROM demo.events GROUP BY day ORDER BY r DESC LIMIT 1";
    assert_eq!(
        fitted("Which day had the highest revenue?", by_aggregate),
        by_aggregate
    );
}

#[test]
fn coarser_buckets_of_the_same_time_go() {
    assert_eq!(
        fitted(
            "Which hour had the most events?",
            "SELECT toStartOfHour(event_time) AS hour, toStartOfDay(event_time) AS date, count() AS n FROM demo.events GROUP BY hour, date ORDER BY n DESC LIMIT 1"
        ),
        "SELECT toStartOfHour(event_time) AS hour, count() AS n FROM demo.events GROUP BY hour ORDER BY n DESC LIMIT 1"
    );
}

#[test]
fn compared_aggregates_go_to_having() {
    assert_eq!(
        fitted(
            "Which weather kinds had an average max temperature above 20?",
            "SELECT weather FROM vega.weather WHERE temp_max > 20 GROUP BY weather"
        ),
        "SELECT weather FROM vega.weather GROUP BY weather HAVING avg(temp_max) > 20"
    );
    assert_eq!(
        fitted(
            "Which countries had more than 40 purchases?",
            "SELECT country, count() AS n FROM demo.events WHERE event_type = 'purchase' GROUP BY country ORDER BY n DESC LIMIT 1"
        ),
        "SELECT country, count() AS n FROM demo.events WHERE event_type = 'purchase' GROUP BY country HAVING n > 40 ORDER BY n DESC"
    );
    let raw = "SELECT weather, count() AS n FROM vega.weather WHERE temp_max > 20 GROUP BY weather";
    assert_eq!(fitted("days above 20 degrees per weather kind", raw), raw);
}

#[test]
fn a_follow_up_gets_only_the_rules_that_do_not_read_the_question() {
    let (schema, samples) = fixture();
    let question = "only on mobile";
    let linked = link(&schema, &samples, question, 3);
    let ctx = Fit {
        question,
        linked: &linked,
        schema: &schema,
        samples: &samples,
        default_database: "default",
        follow_up: true,
        disabled: &[],
    };
    // The purchase filter came from the earlier question: it stays.
    let refined = "SELECT country, count() AS n FROM demo.events WHERE event_type = 'purchase' AND device = 'mobile' GROUP BY country";
    assert_eq!(fit(refined, &ctx).0, refined);
    // A made-up column is fixed all the same.
    assert_eq!(
        repair_names("SELECT avg(tm) FROM vega.weather", &ctx).0,
        "SELECT avg(temp_max) FROM vega.weather"
    );
}

#[test]
fn how_many_without_a_breakdown_is_one_count() {
    assert_eq!(
        fitted(
            "On how many days was it below zero?",
            "SELECT toDate(date) AS day, count() AS n FROM vega.weather WHERE temp_max < 0 GROUP BY day ORDER BY day"
        ),
        "SELECT count() AS n FROM vega.weather WHERE temp_max < 0"
    );
    let per_day = "SELECT toDate(event_time) AS day, count() AS n FROM demo.events GROUP BY day";
    assert_eq!(fitted("How many events per day?", per_day), per_day);
    let top_hour = "SELECT toStartOfHour(event_time) AS hour, count() AS events FROM demo.events GROUP BY hour ORDER BY events DESC LIMIT 1";
    assert_eq!(
        fitted(
            "Which hour had the most events, and how many were there?",
            top_hour
        ),
        top_hour,
        "the top bucket and its count"
    );
}

#[test]
fn a_bucket_without_an_aggregate_is_aggregated() {
    assert_eq!(
        fitted(
            "Revenue for each day, oldest day first",
            "SELECT toDate(event_time) AS day, revenue FROM demo.events ORDER BY toDate(event_time) ASC"
        ),
        "SELECT toDate(event_time) AS day, sum(revenue) AS revenue FROM demo.events GROUP BY day ORDER BY toDate(event_time) ASC"
    );
    assert_eq!(
        fitted(
            "Which day had the highest revenue?",
            "SELECT toDate(event_time) AS day, revenue AS top FROM demo.events ORDER BY revenue DESC LIMIT 1"
        ),
        "SELECT toDate(event_time) AS day, sum(revenue) AS top FROM demo.events GROUP BY day ORDER BY top DESC LIMIT 1"
    );
    let rows = "SELECT toDate(event_time) AS day, revenue FROM demo.events LIMIT 5";
    assert_eq!(fitted("show five events with their day", rows), rows);
}

#[test]
fn periods_counted_back_from_now() {
    use super::time::{relative_period_in, RelativePeriod};
    let calendar = |bucket, unit, back| RelativePeriod::Calendar { bucket, unit, back };
    for (question, period) in [
        (
            "purchases per country in the last hour",
            Some(RelativePeriod::Rolling(1, "HOUR")),
        ),
        (
            "revenue over the past 7 days",
            Some(RelativePeriod::Rolling(7, "DAY")),
        ),
        (
            "errors in the last two weeks",
            Some(RelativePeriod::Rolling(2, "WEEK")),
        ),
        (
            "signups in the last month",
            Some(RelativePeriod::Rolling(1, "MONTH")),
        ),
        (
            "orders last month",
            Some(calendar("toStartOfMonth", "MONTH", 1)),
        ),
        (
            "orders in the previous year",
            Some(calendar("toYear", "YEAR", 1)),
        ),
        ("how many events today", Some(calendar("toDate", "DAY", 0))),
        (
            "visits yesterday by device",
            Some(calendar("toDate", "DAY", 1)),
        ),
        ("revenue this week", Some(calendar("toMonday", "WEEK", 0))),
        // Not periods: a last name, the last orders, or two periods at once.
        ("the player's first and last name", None),
        ("the last 5 orders", None),
        ("today and yesterday", None),
        ("this days", None),
    ] {
        assert_eq!(relative_period_in(question), period, "{question}");
    }
}

#[test]
fn a_period_counted_back_from_now_is_a_condition() {
    assert_eq!(
        fitted(
            "How many purchases per country in the last hour?",
            "SELECT country, count() FROM demo.events WHERE event_type = 'purchase' GROUP BY country"
        ),
        "SELECT country, count() FROM demo.events WHERE event_type = 'purchase' AND event_time >= now() - INTERVAL 1 HOUR GROUP BY country"
    );
    // Dates the model made up for it are replaced.
    assert_eq!(
        fitted(
            "How many purchases yesterday?",
            "SELECT count() FROM demo.events WHERE event_type = 'purchase' AND toDate(event_time) = '2024-01-01'"
        ),
        "SELECT count() FROM demo.events WHERE event_type = 'purchase' AND toDate(event_time) = toDate(today() - INTERVAL 1 DAY)"
    );
    // A Date column gets a date bound.
    assert_eq!(
        fitted(
            "Average high over the past 30 days",
            "SELECT avg(temp_max) FROM vega.weather"
        ),
        "SELECT avg(temp_max) FROM vega.weather WHERE date >= toDate(now() - INTERVAL 30 DAY)"
    );
    // "Of data": from the newest row.
    assert_eq!(
        fitted(
            "How many events per minute in the last hour of data?",
            "SELECT toStartOfMinute(event_time) AS minute, count() FROM demo.events GROUP BY minute"
        ),
        "SELECT toStartOfMinute(event_time) AS minute, count() FROM demo.events WHERE event_time >= (SELECT max(event_time) FROM demo.events) - INTERVAL 1 HOUR GROUP BY minute"
    );
    // The model's own relative condition stays.
    let own = "SELECT count() FROM demo.events WHERE event_time > now() - INTERVAL 60 MINUTE";
    assert_eq!(fitted("How many events in the last hour?", own), own);
}

#[test]
fn every_group_unless_the_top_one_is_asked_for() {
    assert_eq!(
        fitted(
            "How many purchases per country?",
            "SELECT country, count() AS purchases FROM demo.events WHERE event_type = 'purchase' GROUP BY country ORDER BY country DESC LIMIT 1"
        ),
        "SELECT country, count() AS purchases FROM demo.events WHERE event_type = 'purchase' GROUP BY country ORDER BY country DESC"
    );
    for (question, sql) in [
        (
            "Which country has the most events?",
            "SELECT country, count() AS n FROM demo.events GROUP BY country ORDER BY n DESC LIMIT 1",
        ),
        (
            "The top country by events",
            "SELECT country, count() AS n FROM demo.events GROUP BY country ORDER BY n DESC LIMIT 1",
        ),
        (
            "How many events per country, top 3?",
            "SELECT country, count() AS n FROM demo.events GROUP BY country ORDER BY n DESC LIMIT 3",
        ),
    ] {
        assert_eq!(fitted(question, sql), sql, "{question}");
    }
}
