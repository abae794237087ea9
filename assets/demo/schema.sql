-- The demo data set: a week of an online shop's clickstream and its product list.
CREATE DATABASE IF NOT EXISTS demo;

CREATE TABLE IF NOT EXISTS demo.events
(
    event_time DateTime COMMENT 'when the event happened (UTC)',
    event_id UInt64 COMMENT 'unique id of the event',
    user_id UInt32 COMMENT 'anonymous visitor id',
    event_type LowCardinality(String) COMMENT 'page_view, add_to_cart or purchase',
    page String COMMENT 'path of the page',
    product_id String COMMENT 'product involved, empty for most page views',
    country LowCardinality(String) COMMENT 'ISO country code of the visitor',
    device LowCardinality(String) COMMENT 'desktop, mobile or tablet',
    quantity UInt8 COMMENT 'items added or bought',
    revenue Decimal(10, 2) COMMENT 'purchase amount in EUR, 0 for other events'
)
ENGINE = MergeTree
PARTITION BY toYYYYMMDD(event_time)
ORDER BY (event_type, event_time);

CREATE TABLE IF NOT EXISTS demo.products
(
    product_id String COMMENT 'product code',
    name String COMMENT 'product name',
    price Decimal(10, 2) COMMENT 'list price in EUR'
)
ENGINE = MergeTree
ORDER BY product_id;
