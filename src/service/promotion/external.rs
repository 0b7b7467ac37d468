//! The hosts' base system, as the closure gate sees it: configured capability
//! patterns, plus what base repositories' metadata provides (fetched once at
//! startup; a repository that cannot be read is logged and left out).

use std::io::{BufReader, Read};
use std::time::Duration;

use crate::config::Config;
use crate::formats::deps::{self, External};

/// The largest metadata file read, compressed or not.
const MAX_BYTES: u64 = 512 * 1024 * 1024;
/// Provides and file entries kept from all base repositories together.
const MAX_ENTRIES: usize = 20_000_000;
const TIMEOUT: Duration = Duration::from_secs(30);

/// The configured base system; `fetch` false reads no base repositories.
pub fn load(config: &Config, fetch: bool) -> External {
    let mut ext = External::new(&config.external_capabilities).unwrap_or_else(|e| {
        // The patterns were checked when the configuration was read.
        tracing::error!(error = %e, "external capability patterns ignored");
        External::default()
    });
    if !fetch {
        return ext;
    }
    for url in &config.base_repositories {
        let started = std::time::Instant::now();
        match read_repository(url, MAX_ENTRIES.saturating_sub(ext.len())) {
            Ok(builds) => {
                let n = builds.len();
                for b in builds {
                    ext.add(b);
                }
                tracing::info!(
                    url,
                    packages = n,
                    ms = started.elapsed().as_millis() as u64,
                    "base repository read"
                );
            }
            Err(e) => {
                tracing::warn!(url, error = %e, "base repository not read; its capabilities count as missing")
            }
        }
    }
    ext
}

/// A yum repository (by its base URL) or an apt Packages file.
fn read_repository(url: &str, limit: usize) -> Result<Vec<deps::BuildDeps>, String> {
    let file = url.rsplit('/').next().unwrap_or("");
    if file.starts_with("Packages") {
        let text = read_text(&get(url)?, file)?;
        return Ok(deps::from_stanza(&text));
    }
    let base = url.trim_end_matches('/');
    let repomd =
        String::from_utf8_lossy(&get(&format!("{base}/repodata/repomd.xml"))?).into_owned();
    let href = primary_href(&repomd).ok_or("repomd.xml names no primary metadata")?;
    let bytes = get(&format!("{base}/{href}"))?;
    let reader = decompress(&bytes, &href)?;
    deps::from_primary(BufReader::new(reader.take(MAX_BYTES)), limit)
}

/// `<data type="primary"><location href="…"/>`.
fn primary_href(repomd: &str) -> Option<String> {
    let at = repomd.find("type=\"primary\"")?;
    let rest = &repomd[at..];
    let loc = rest.find("href=\"")? + 6;
    let end = rest[loc..].find('"')?;
    Some(rest[loc..loc + end].to_string())
}

fn decompress<'a>(bytes: &'a [u8], name: &str) -> Result<Box<dyn Read + 'a>, String> {
    Ok(if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(bytes))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(bytes).map_err(|e| e.to_string())?)
    } else if name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new(bytes))
    } else {
        Box::new(bytes)
    })
}

fn read_text(bytes: &[u8], name: &str) -> Result<String, String> {
    let mut out = String::new();
    decompress(bytes, name)?
        .take(MAX_BYTES)
        .read_to_string(&mut out)
        .map_err(|e| format!("{name}: {e}"))?;
    Ok(out)
}

/// Reads a URL (http, https or file), at most [`MAX_BYTES`].
fn get(url: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    if let Some(path) = url.strip_prefix("file://") {
        std::fs::File::open(path)
            .and_then(|f| f.take(MAX_BYTES).read_to_end(&mut out))
            .map_err(|e| format!("{path}: {e}"))?;
        return Ok(out);
    }
    let agent = ureq::AgentBuilder::new().timeout(TIMEOUT).build();
    let resp = agent.get(url).call().map_err(|e| format!("{url}: {e}"))?;
    resp.into_reader()
        .take(MAX_BYTES)
        .read_to_end(&mut out)
        .map_err(|e| format!("{url}: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::io::Write;

    use super::*;
    use crate::formats::deps::{Kind, Universe, Verdict};

    fn gz(text: &str) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(text.as_bytes()).expect("gz");
        e.finish().expect("gz")
    }

    #[test]
    fn base_repositories_from_file_urls() {
        let dir = tempfile::tempdir().expect("dir");
        let yum = dir.path().join("base");
        std::fs::create_dir_all(yum.join("repodata")).expect("mkdir");
        std::fs::write(
            yum.join("repodata/repomd.xml"),
            r#"<repomd><data type="other"><location href="repodata/o.xml.gz"/></data>
<data type="primary"><location href="repodata/p-primary.xml.gz"/></data></repomd>"#,
        )
        .expect("repomd");
        std::fs::write(
            yum.join("repodata/p-primary.xml.gz"),
            gz(
                r#"<metadata><package type="rpm"><name>glibc</name><arch>x86_64</arch>
<version epoch="0" ver="2.34" rel="1"/><format><rpm:provides>
<rpm:entry name="libc.so.6(GLIBC_2.34)(64bit)"/></rpm:provides><file>/usr/sbin/ldconfig</file>
</format></package></metadata>"#,
            ),
        )
        .expect("primary");
        let apt = dir.path().join("Packages.gz");
        std::fs::write(
            &apt,
            gz("Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\n"),
        )
        .expect("apt");
        let mut config = Config::for_data_dir(dir.path());
        config.external_capabilities = vec!["/bin/sh".into()];
        config.base_repositories = vec![
            format!("file://{}", yum.display()),
            format!("file://{}", apt.display()),
            format!("file://{}/missing", dir.path().display()),
        ];
        let ext = load(&config, true);
        let (p, f) = (HashMap::new(), HashMap::new());
        let check = |kind, req: &str| {
            Universe {
                kind,
                provides: &p,
                files: &f,
                external: &ext,
            }
            .check(req, "amd64")
        };
        assert_eq!(
            check(Kind::Rpm, "libc.so.6(GLIBC_2.34)(64bit)"),
            Verdict::Satisfied
        );
        assert_eq!(check(Kind::Rpm, "glibc >= 2.30"), Verdict::Satisfied);
        assert_eq!(check(Kind::Rpm, "glibc >= 2.40"), Verdict::Missing);
        assert_eq!(check(Kind::Rpm, "/usr/sbin/ldconfig"), Verdict::Satisfied);
        assert_eq!(check(Kind::Rpm, "/bin/sh"), Verdict::Satisfied);
        assert_eq!(check(Kind::Deb, "libc6 (>= 2.36)"), Verdict::Satisfied);
        assert_eq!(check(Kind::Deb, "libssl3"), Verdict::Missing);
        assert!(load(&config, false).is_empty(), "nothing fetched");
    }
}
