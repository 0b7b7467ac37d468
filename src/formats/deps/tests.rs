use std::collections::HashMap;

use super::*;

type Row<'a> = (&'a str, &'a str, &'a str, Option<(Op, &'a str)>);

fn prov(list: &[Row<'_>]) -> HashMap<String, Vec<Provider>> {
    let mut m: HashMap<String, Vec<Provider>> = HashMap::new();
    for (id, arch, name, rel) in list {
        m.entry(name.to_string()).or_default().push(Provider {
            id: id.to_string(),
            arch: arch.to_string(),
            rel: rel.map(|(o, v)| (o, v.to_string())),
        });
    }
    m
}

fn verdict(kind: Kind, p: &HashMap<String, Vec<Provider>>, req: &str, arch: &str) -> Verdict {
    let files = HashMap::from([("/usr/bin/foo".to_string(), vec!["f".to_string()])]);
    let ext =
        External::new(&["libc.so.6*".into(), "/bin/sh".into(), "libc6".into()]).expect("patterns");
    Universe {
        kind,
        provides: p,
        files: &files,
        external: &ext,
    }
    .check(req, arch)
}

#[test]
fn rpm_versions_files_rpmlib_and_patterns() {
    let p = prov(&[
        ("a", "x86_64", "libfoo", Some((Op::Eq, "2.1-1"))),
        ("b", "x86_64", "any-version", None),
    ]);
    let ok = |r: &str| verdict(Kind::Rpm, &p, r, "x86_64") == Verdict::Satisfied;
    assert!(ok("libfoo >= 2"));
    assert!(
        ok("libfoo = 2.1"),
        "release ignored when the requirement has none"
    );
    assert!(!ok("libfoo >= 3"));
    assert!(!ok("libfoo = 2.1-2"));
    assert!(ok("libfoo < 0:2.2"));
    assert!(!ok("libfoo > 1:1"), "epoch 1 beats epoch 0");
    assert!(
        ok("any-version >= 99"),
        "an unversioned provide meets any version"
    );
    assert!(ok("/usr/bin/foo") && !ok("/usr/bin/bar"));
    assert!(ok("rpmlib(PayloadIsZstd) <= 5.4.18-1"));
    assert!(ok("libc.so.6(GLIBC_2.34)(64bit)") && ok("/bin/sh"));
    assert!(!ok("libbar.so.1()(64bit)"));
}

#[test]
fn rpm_rich_dependencies() {
    let p = prov(&[
        ("a", "x86_64", "a", Some((Op::Eq, "1-1"))),
        ("a", "x86_64", "both", None),
        ("b", "x86_64", "b", None),
    ]);
    let v = |r: &str| verdict(Kind::Rpm, &p, r, "x86_64");
    assert_eq!(v("(a or zz)"), Verdict::Satisfied);
    assert_eq!(v("(a and zz)"), Verdict::Missing);
    assert_eq!(v("(a >= 1 and (b or zz))"), Verdict::Satisfied);
    assert_eq!(v("(zz if b)"), Verdict::Missing);
    assert_eq!(
        v("(zz if yy)"),
        Verdict::Satisfied,
        "the condition can never hold"
    );
    assert_eq!(v("(zz if b else a)"), Verdict::Satisfied);
    assert_eq!(v("(zz unless b)"), Verdict::Satisfied);
    assert_eq!(v("(a with both)"), Verdict::Satisfied);
    assert_eq!(v("(a with b)"), Verdict::Missing);
    assert_eq!(v("(perl(Foo::Bar) or a)"), Verdict::Satisfied);
    assert!(matches!(v("(a or"), Verdict::Assumed(_)));
    assert!(matches!(v("(a or b and c)"), Verdict::Assumed(_)));
    assert_eq!(
        Universe::names(Kind::Rpm, "(a >= 1 or (b if c))"),
        ["a", "b", "c"]
    );
}

#[test]
fn deb_alternatives_versions_virtuals_and_arches() {
    let p = prov(&[
        ("a", "amd64", "libfoo2", Some((Op::Eq, "2.0-1"))),
        ("a", "amd64", "libfoo-abi", None),
        ("m", "all", "mail-transport-agent", Some((Op::Eq, "1.5"))),
        ("x", "arm64", "armonly", Some((Op::Eq, "1"))),
    ]);
    let ok = |r: &str, arch: &str| verdict(Kind::Deb, &p, r, arch) == Verdict::Satisfied;
    assert!(ok("libfoo2 (>= 2.0)", "amd64"));
    assert!(!ok("libfoo2 (>> 2.0-1)", "amd64"));
    assert!(ok("libfoo2 (<< 2.0-2)", "amd64"));
    assert!(ok("libfoo2 (>= 1.0~rc1)", "amd64"));
    assert!(ok("nothere | libfoo2", "amd64"));
    assert!(ok("libfoo-abi", "amd64"));
    assert!(
        !ok("libfoo-abi (>= 1)", "amd64"),
        "unversioned provide, versioned depends"
    );
    assert!(ok("mail-transport-agent (>= 1)", "amd64"));
    assert!(!ok("armonly", "amd64"), "another architecture's package");
    assert!(ok("armonly:any", "amd64"));
    assert!(ok("armonly", "all"));
    assert!(ok("libfoo2:native", "amd64"));
    assert!(ok("libc6 (>= 2.36)", "amd64"), "allow-listed");
    assert!(ok("libfoo2 (>= 2) [amd64] <!nocheck>", "amd64"));
}

#[test]
fn facts_from_primary_xml_and_stanzas() {
    let xml = r#"<package type="rpm"><name>app</name><arch>x86_64</arch>
<version epoch="0" ver="1.0" rel="1"/><format>
<rpm:provides><rpm:entry name="app" flags="EQ" epoch="0" ver="1.0" rel="1"/><rpm:entry name="app(x86-64)"/></rpm:provides>
<rpm:requires><rpm:entry name="libfoo" flags="GE" epoch="0" ver="2"/><rpm:entry name="(a &amp; or b)"/><rpm:entry name="/bin/sh" pre="1"/></rpm:requires>
<file>/usr/bin/a&amp;b</file></format></package>"#;
    let b = from_primary(xml.as_bytes(), 1000).expect("parse");
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].name, "app");
    assert_eq!(b[0].requires, ["libfoo >= 2", "(a & or b)", "/bin/sh"]);
    assert_eq!(b[0].files, ["/usr/bin/a&b"]);
    assert_eq!(b[0].provides.len(), 2);
    assert!(from_primary(xml.as_bytes(), 2).is_err(), "bounded");
    let s = from_stanza(
        "Package: app\nVersion: 1:2.0-1\nArchitecture: amd64\nProvides: httpd (= 2), www\nPre-Depends: dpkg (>= 1.17)\nDepends: libfoo2 (>= 2),\n foo | bar\n\nPackage: b\nVersion: 1\n",
    );
    assert_eq!(s.len(), 2);
    assert_eq!(
        s[0].requires,
        ["dpkg (>= 1.17)", "libfoo2 (>= 2)", "foo | bar"]
    );
    assert_eq!(s[0].provides[2].rel, Some((Op::Eq, "1:2.0-1".into())));
}

#[test]
fn offers_name_the_builds_that_would_do() {
    let p = prov(&[
        ("old", "x86_64", "libfoo", Some((Op::Eq, "1-1"))),
        ("new", "x86_64", "libfoo", Some((Op::Eq, "2-1"))),
    ]);
    let files = HashMap::new();
    let ext = External::default();
    let u = Universe {
        kind: Kind::Rpm,
        provides: &p,
        files: &files,
        external: &ext,
    };
    assert_eq!(offers(Kind::Rpm, "libfoo >= 2", "x86_64", &u), ["new"]);
}
