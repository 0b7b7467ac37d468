//! One build's page: its detail and whole history (the catalog's), what its
//! stored metadata says (dependencies, file count), and which actions the
//! reader's token allows on it, so the page offers exactly those.

use diesel::prelude::*;
use serde::Serialize;

use crate::db::schema::packages;
use crate::service::catalog::packages::detail;
use crate::service::catalog::views::PackageDetail;
use crate::service::{Actor, Ctx, PackageRef, ServiceError};

#[derive(Debug, Clone, Serialize)]
pub struct BuildPage {
    pub detail: PackageDetail,
    pub depends: Vec<String>,
    pub file_count: usize,
    /// Fingerprints of the keys that sign the repositories serving it.
    pub signed_by: Vec<String>,
    pub may: Allowed,
}

/// The actions to offer; the service functions decide again when used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Allowed {
    /// Channels it may be promoted into now (each follows one holding it).
    pub promote_to: Vec<String>,
    /// Channels holding it that the reader may demote it from.
    pub demote_from: Vec<String>,
    pub hold: bool,
    pub discard: bool,
}

/// Requirement names in a primary.xml fragment, in order, without rpmlib().
fn rpm_requires(primary: &str) -> Vec<String> {
    let Some(start) = primary.find("<rpm:requires>") else {
        return Vec::new();
    };
    let block = &primary[start..];
    let block = &block[..block.find("</rpm:requires>").unwrap_or(block.len())];
    block
        .split("<rpm:entry ")
        .skip(1)
        .filter_map(|e| e.split("name=\"").nth(1)?.split('"').next())
        .filter(|n| !n.starts_with("rpmlib("))
        .map(|n| {
            n.replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&")
        })
        .collect()
}

/// The `Depends` and `Pre-Depends` of an apt stanza, one relation each.
fn deb_depends(stanza: &str) -> Vec<String> {
    stanza
        .lines()
        .filter_map(|l| {
            l.strip_prefix("Depends: ")
                .or_else(|| l.strip_prefix("Pre-Depends: "))
        })
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

pub fn build_page(ctx: &Ctx, id: &PackageRef, actor: &Actor) -> Result<BuildPage, ServiceError> {
    let detail = detail(ctx, id, actor)?;
    let p = &detail.package;
    let (primary, filelists, stanza): (String, String, Option<String>) = packages::table
        .find(&p.id)
        .select((
            packages::primary_xml,
            packages::filelists_xml,
            packages::apt_stanza,
        ))
        .first(&mut *ctx.conn()?)?;
    let depends = match &stanza {
        Some(s) if p.kind == "deb" => deb_depends(s),
        _ => rpm_requires(&primary),
    };
    let file_count = filelists.matches("<file").count() - filelists.matches("<filelists").count();
    let g = &actor.grants;
    let mut may = Allowed::default();
    if p.discarded.is_none() {
        let chans = &ctx.config.channels;
        for (i, c) in chans.iter().enumerate() {
            let holds = p.channels.contains(c);
            if holds && g.may_promote(c) && ctx.may_read(actor, c) {
                may.demote_from.push(c.clone());
            }
            let prev_holds = i > 0 && p.channels.contains(&chans[i - 1]);
            if !holds && prev_holds && g.may_promote(c) && ctx.may_read(actor, c) {
                may.promote_to.push(c.clone());
            }
        }
        may.hold = g.is_admin() || g.may_upload() || chans.iter().any(|c| g.may_promote(c));
        may.discard = g.is_admin();
    }
    Ok(BuildPage {
        depends,
        file_count,
        signed_by: ctx.signer.fingerprints().to_vec(),
        may,
        detail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirements_from_primary_xml() {
        let xml = r#"<format><rpm:provides><rpm:entry name="demo"/></rpm:provides><rpm:requires><rpm:entry name="rpmlib(PayloadFilesHavePrefix)" flags="LE"/><rpm:entry name="forklift-lib" flags="GE" ver="1.0"/><rpm:entry name="/bin/sh"/></rpm:requires></format>"#;
        assert_eq!(rpm_requires(xml), vec!["forklift-lib", "/bin/sh"]);
        assert!(rpm_requires("<format/>").is_empty());
    }

    #[test]
    fn depends_from_an_apt_stanza() {
        let s = "Package: x\nPre-Depends: dpkg (>= 1.15)\nDepends: libc6 (>= 2.34), forklift-common | other\n";
        assert_eq!(
            deb_depends(s),
            vec![
                "dpkg (>= 1.15)",
                "libc6 (>= 2.34)",
                "forklift-common | other"
            ]
        );
    }
}
