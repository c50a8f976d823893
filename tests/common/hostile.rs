//! Domains a client might send to break out of an nginx file, a path or a command line. Every
//! one must be refused before anything is written.

pub fn domains() -> Vec<String> {
    let mut v: Vec<String> = [
        "a.com;",
        "a.com; include /etc/shadow",
        "a.com { }",
        "a.com{",
        "a.com}",
        "$host",
        "a.$host.com",
        "a.com\n",
        "a.com\nserver_name evil.com",
        "a.com\r\n",
        "include",
        "../",
        "../a.com",
        "a.com/../b",
        "a.com/x",
        "a..com",
        "-a.com",
        "a-.com",
        "a.-com",
        ".a.com",
        "a.com.",
        "a com",
        " a.com",
        "a.com ",
        "a\tcom.org",
        "'a.com'",
        "\"a.com\"",
        "a.com#",
        "a.com\\",
        "a.com`id`",
        "a.com$(id)",
        "*.a.com",
        "a.*",
        "A.COM",
        "Qa.acme.com",
        "a_b.com",
        "a.c\u{043e}m",        // Cyrillic o
        "\u{0430}.com",        // Cyrillic a
        "exa\u{200b}mple.com", // zero-width space
        "ex\u{0430}mple.com",
        "a.com\0",
        "",
        "com",
        "localhost",
        "1.2.3.4",
        "[::1]",
        "a.com:80",
        "user@a.com",
        "a.com?x",
        "a.com%0a",
        "xn--a.com;",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.push(format!("{}.com", "a".repeat(300)));
    v.push(format!("{}.com", "a".repeat(64)));
    v.push(["abcdefghij"; 26].join("."));
    v
}
