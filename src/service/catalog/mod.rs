//! The catalog: what is stored about builds and channels and how callers see
//! it. Named queries shared by every domain, views restricted to what the
//! caller may read, channels with their revisions, and the audit log.

pub mod audit;
pub mod channels;
pub mod deps;
pub mod packages;
pub mod queries;
pub mod views;
