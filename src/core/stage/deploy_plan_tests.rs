use super::*;

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn names(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn field(e: Error) -> String {
    match e {
        Error::InvalidParams { field, .. } => field.to_string(),
        other => panic!("{other:?}"),
    }
}

/// "changed" from a file list as git prints it: the changed top-level folders that are
/// modules of the new tree, nothing else.
#[test]
fn changed_modules_come_from_the_changed_paths() {
    let files = [
        "mod_a/models/x.py",
        "mod_a/__manifest__.py",
        "README.md",
        "mod_c/views/v.xml",
        "not_a_module/x.py",
        "gone_module/__init__.py",
    ];
    let tops: BTreeSet<String> = files.iter().map(|f| top_level(f).to_string()).collect();
    assert_eq!(
        tops,
        set(&["README.md", "gone_module", "mod_a", "mod_c", "not_a_module"])
    );
    let checkout = set(&["mod_a", "mod_b", "mod_c"]);
    let m = plan(&UpdateModules::Changed, &checkout, Some(&tops)).unwrap();
    assert_eq!(m, Modules::List(names(&["mod_a", "mod_c"])));
    assert_eq!(m.placeholder(), "mod_a,mod_c");
    // Nothing of a module changed: no update.
    let m = plan(
        &UpdateModules::Changed,
        &checkout,
        Some(&set(&["README.md"])),
    )
    .unwrap();
    assert!(matches!(m, Modules::Nothing(_)), "{m:?}");
    // First deploy (or an unknown old commit): every module folder of the checkout.
    let m = plan(&UpdateModules::Changed, &checkout, None).unwrap();
    assert_eq!(m, Modules::List(names(&["mod_a", "mod_b", "mod_c"])));
    let m = plan(&UpdateModules::Changed, &set(&[]), None).unwrap();
    assert!(matches!(m, Modules::Nothing(_)), "{m:?}");
}

/// A folder whose name is not plain is never handed to the update command, whatever changed.
#[test]
fn folders_with_odd_names_are_not_modules() {
    let checkout = set(&["mod_a", "{db_password}", "-x", "a,b"]);
    let tops = set(&["mod_a", "{db_password}", "-x", "a,b"]);
    let m = plan(&UpdateModules::Changed, &checkout, Some(&tops)).unwrap();
    assert_eq!(m, Modules::List(names(&["mod_a"])));
    let m = plan(&UpdateModules::Changed, &checkout, None).unwrap();
    assert_eq!(m, Modules::List(names(&["mod_a"])));
}

#[test]
fn named_modules_must_be_folders_of_the_checkout() {
    let checkout = set(&["mod_a", "mod_b"]);
    let upd = UpdateModules::Named(names(&["mod_b"]));
    assert_eq!(
        plan(&upd, &checkout, None).unwrap(),
        Modules::List(names(&["mod_b"]))
    );
    let upd = UpdateModules::Named(names(&["mod_b", "nope"]));
    let e = plan(&upd, &checkout, None).unwrap_err();
    assert!(e.to_string().contains("\"nope\""), "{e}");
    assert_eq!(field(e), "update");
    let upd = UpdateModules::Named(vec![]);
    assert!(matches!(
        plan(&upd, &checkout, None).unwrap(),
        Modules::Nothing(_)
    ));
    let m = plan(&UpdateModules::All, &checkout, None).unwrap();
    assert_eq!(m.placeholder(), "all");
}

#[test]
fn names_are_plain_folder_names() {
    assert_eq!(
        check_names(&names(&["mod_a", "web-x", "v1.2", "mod_a"])).unwrap(),
        names(&["mod_a", "web-x", "v1.2"])
    );
    for bad in [
        "", "a/b", "..", "a..b", "-u", ".hidden", "a,b", "a b", "{x}", "all", "é", "a\nb",
    ] {
        let e = check_names(&names(&[bad])).unwrap_err();
        assert_eq!(field(e), "update", "{bad:?}");
    }
    let many: Vec<String> = (0..1001).map(|i| format!("m{i}")).collect();
    assert_eq!(field(check_names(&many).unwrap_err()), "update");
    assert!(!is_plain_name(&"a".repeat(101)));
}

#[test]
fn the_update_command_gets_its_modules() {
    let cmd = names(&[
        "odoo",
        "-d",
        "{db_name}",
        "-i",
        "{modules}",
        "-u",
        "{modules}",
    ]);
    let argv = update_argv(&cmd, &Modules::List(names(&["a", "b"])));
    assert_eq!(
        argv,
        names(&["odoo", "-d", "{db_name}", "-i", "a,b", "-u", "a,b"])
    );
    assert_eq!(update_argv(&cmd, &Modules::All)[4], "all");
}

/// The snapshot is a template copy owned like the database; putting it back renames both in
/// one transaction, so the stage's database is never missing.
#[test]
fn snapshot_and_restore_sql() {
    let s = snapshot_sql("qa");
    assert_eq!(
        s[0],
        "DROP DATABASE IF EXISTS \"qa__pre_deploy\" WITH (FORCE)"
    );
    assert!(s[1].contains("pg_terminate_backend") && s[1].contains("datname = 'qa'"));
    assert_eq!(s[2], "CREATE DATABASE \"qa__pre_deploy\" TEMPLATE \"qa\"");
    assert!(s[3].contains("OWNER TO %I") && s[3].contains("'qa__pre_deploy'"));
    let r = restore_sql("qa");
    assert!(r[1].contains("pg_terminate_backend"));
    assert_eq!(
        r[2],
        "BEGIN; ALTER DATABASE \"qa\" RENAME TO \"qa__deploy_failed\"; ALTER DATABASE \
         \"qa__pre_deploy\" RENAME TO \"qa\"; COMMIT"
    );
    assert_eq!(
        r[3],
        "DROP DATABASE IF EXISTS \"qa__deploy_failed\" WITH (FORCE)"
    );
    assert!(snapshot_count_sql("qa").ends_with("datname = 'qa__pre_deploy'"));
    assert_eq!(literal("a'b"), "'a''b'");
}
