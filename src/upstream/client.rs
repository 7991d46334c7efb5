//! Per-worker awc clients, one per cluster (awc's `Client` is `!Send`).
