//! Archive member paths: refusing absolute paths, `..` and links that leave the tree.

/// Splits a member path into its components, dropping empty and `.` components. Refuses
/// absolute paths (`/x`, `\x`, `C:x`), `..` components and NUL bytes; the error is a reason.
pub(super) fn components(raw: &str) -> Result<Vec<&str>, &'static str> {
    if raw.contains('\0') {
        return Err("contains a NUL byte");
    }
    if raw.starts_with(['/', '\\']) || has_drive_prefix(raw) {
        return Err("is an absolute path");
    }
    let parts: Vec<&str> = raw
        .split(['/', '\\'])
        .filter(|part| !part.is_empty() && *part != ".")
        .collect();
    if parts.contains(&"..") {
        return Err("contains '..'");
    }
    Ok(parts)
}

/// `C:` and the like, which Windows tools treat as absolute.
fn has_drive_prefix(raw: &str) -> bool {
    let mut chars = raw.chars();
    matches!(
        (chars.next(), chars.next()),
        (Some(letter), Some(':')) if letter.is_ascii_alphabetic()
    )
}

/// Resolves a symbolic link's `target` relative to the directory holding the link (given as the
/// link's own components). Returns the resolved components, or `None` when the target is
/// absolute or climbs above the archive root.
pub(super) fn resolve_symlink<'a>(link: &[&'a str], target: &'a str) -> Option<Vec<&'a str>> {
    if target.is_empty() || target.starts_with(['/', '\\']) || has_drive_prefix(target) {
        return None;
    }
    let mut resolved: Vec<&str> = link.to_vec();
    resolved.pop();
    for part in target.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                resolved.pop()?;
            }
            other => resolved.push(other),
        }
    }
    Some(resolved)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_are_split() {
        assert_eq!(
            components("foo-1.0/PKG-INFO"),
            Ok(vec!["foo-1.0", "PKG-INFO"])
        );
        assert_eq!(
            components("./foo-1.0//src/./x.py"),
            Ok(vec!["foo-1.0", "src", "x.py"])
        );
        assert_eq!(components("foo-1.0/"), Ok(vec!["foo-1.0"]));
        assert_eq!(components("./"), Ok(vec![]));
    }

    #[test]
    fn unsafe_paths_are_refused() {
        assert_eq!(components("/etc/passwd"), Err("is an absolute path"));
        assert_eq!(components("\\x"), Err("is an absolute path"));
        assert_eq!(components("C:\\x"), Err("is an absolute path"));
        assert_eq!(components("foo/../../x"), Err("contains '..'"));
        assert_eq!(components(".."), Err("contains '..'"));
        assert_eq!(components("foo\\..\\x"), Err("contains '..'"));
        assert_eq!(components("a\0b"), Err("contains a NUL byte"));
    }

    #[test]
    fn symlinks_inside_the_tree_resolve() {
        let link = ["foo-1.0", "docs", "link"];
        assert_eq!(
            resolve_symlink(&link, "../README"),
            Some(vec!["foo-1.0", "README"])
        );
        assert_eq!(
            resolve_symlink(&link, "./x/y"),
            Some(vec!["foo-1.0", "docs", "x", "y"])
        );
    }

    #[test]
    fn symlinks_leaving_the_tree_are_refused() {
        let link = ["foo-1.0", "link"];
        assert_eq!(resolve_symlink(&link, "../other"), Some(vec!["other"]));
        assert_eq!(resolve_symlink(&link, "../../etc"), None);
        assert_eq!(resolve_symlink(&link, "/etc/passwd"), None);
        assert_eq!(resolve_symlink(&link, ""), None);
    }
}
