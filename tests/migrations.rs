//! The migrations of both backends stay in step: same folders, each with
//! up.sql and down.sql.

#[test]
fn migration_folders_match() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let list = |b: &str| {
        let mut v: Vec<String> = std::fs::read_dir(root.join(b))
            .expect("migrations dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().to_string())
            .collect();
        v.sort();
        v
    };
    let sqlite = list("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite,
        list("postgres"),
        "every migration must exist for both backends"
    );
    for m in &sqlite {
        for f in ["up.sql", "down.sql"] {
            assert!(root.join("sqlite").join(m).join(f).is_file(), "{m}/{f}");
            assert!(root.join("postgres").join(m).join(f).is_file(), "{m}/{f}");
        }
    }
}
