//! The configured promotion path in the database: a row per channel in
//! order, and a first (empty) revision each, so every repository is
//! servable at once.

use diesel::prelude::*;

use super::{commit, Change, ChannelOp};
use crate::db::models::ChannelRow;
use crate::db::schema::*;
use crate::service::{Actor, Ctx, ServiceError};

/// Makes the database agree with the configured channel list and gives every
/// channel a first (empty) revision, so its repository is servable at once.
pub fn sync_channels(ctx: &Ctx) -> Result<(), ServiceError> {
    let mut conn = ctx.conn()?;
    for (i, name) in ctx.config.channels.iter().enumerate() {
        let exists: Option<ChannelRow> = channels::table
            .find(name)
            .select(ChannelRow::as_select())
            .first(&mut conn)
            .optional()?;
        match exists {
            None => {
                let r = diesel::insert_into(channels::table)
                    .values(ChannelRow {
                        name: name.clone(),
                        position: i as i32,
                        head: 0,
                    })
                    .execute(&mut conn);
                match r {
                    Ok(_) => {}
                    // Another instance created it first.
                    Err(e) if crate::db::is_unique_violation(&e) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Some(c) if c.position != i as i32 => {
                diesel::update(channels::table.find(name))
                    .set(channels::position.eq(i as i32))
                    .execute(&mut conn)?;
            }
            Some(_) => {}
        }
    }
    drop(conn);
    let system = Actor {
        client: "startup".into(),
        ..Actor::system()
    };
    for name in &ctx.config.channels {
        let mut conn = ctx.conn()?;
        let head: i32 = channels::table
            .find(name)
            .select(channels::head)
            .first(&mut conn)?;
        drop(conn);
        if head == 0 {
            let change = Change {
                summary: format!("create channel {name}"),
                ops: vec![ChannelOp {
                    channel: name.clone(),
                    ..ChannelOp::default()
                }],
                ..Change::default()
            };
            let _ = commit(ctx, change, &system)?;
        }
    }
    Ok(())
}
