//! The engine's steps against SQLite, an in-memory calendar and a recording PBX.

mod flow;
mod helpers;
mod nodes;
