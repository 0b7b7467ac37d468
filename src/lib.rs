//! Forklift: a package repository server. CI uploads a build once; the same file
//! is promoted through channels, each published as a yum repository.

pub mod app;
pub mod client;
pub mod config;
pub mod db;
pub mod formats;
pub mod http;
pub mod metrics;
pub mod policy;
pub mod service;
pub mod signing;
pub mod store;
